"""RobustBench 1.1.1"s model zoo by name, so that registering its entries imports nothing (importing
the zoo takes seconds). ``tests/plugins/test_robustbench_zoo.py`` checks every table against the
installed package; another robustbench version is read from the package itself (``entries.zoo_entries``).
"""

VERSION = "1.1.1"

#: (dataset, threat model) → model names, in the zoo"s order.
ZOO: dict[tuple[str, str], tuple[str, ...]] = {
    ("cifar10", "Linf"): (
        "Andriushchenko2020Understanding", "Carmon2019Unlabeled", "Sehwag2020Hydra",
        "Wang2020Improving", "Hendrycks2019Using", "Rice2020Overfitting", "Zhang2019Theoretically",
        "Engstrom2019Robustness", "Chen2020Adversarial", "Huang2020Self", "Pang2020Boosting",
        "Wong2020Fast", "Ding2020MMA", "Zhang2019You", "Zhang2020Attacks",
        "Wu2020Adversarial_extra", "Wu2020Adversarial", "Gowal2020Uncovering_70_16",
        "Gowal2020Uncovering_70_16_extra", "Gowal2020Uncovering_34_20",
        "Gowal2020Uncovering_28_10_extra", "Sehwag2021Proxy", "Sehwag2021Proxy_R18",
        "Sehwag2021Proxy_ResNest152", "Sitawarin2020Improving", "Chen2020Efficient",
        "Cui2020Learnable_34_20", "Cui2020Learnable_34_10", "Zhang2020Geometry",
        "Rebuffi2021Fixing_28_10_cutmix_ddpm", "Rebuffi2021Fixing_106_16_cutmix_ddpm",
        "Rebuffi2021Fixing_70_16_cutmix_ddpm", "Rebuffi2021Fixing_70_16_cutmix_extra",
        "Sridhar2021Robust", "Sridhar2021Robust_34_15", "Rebuffi2021Fixing_R18_ddpm",
        "Rade2021Helper_R18_extra", "Rade2021Helper_R18_ddpm", "Rade2021Helper_extra",
        "Rade2021Helper_ddpm", "Huang2021Exploring", "Huang2021Exploring_ema",
        "Addepalli2021Towards_RN18", "Addepalli2021Towards_WRN34",
        "Gowal2021Improving_70_16_ddpm_100m", "Dai2021Parameterizing",
        "Gowal2021Improving_28_10_ddpm_100m", "Gowal2021Improving_R18_ddpm_100m",
        "Chen2021LTD_WRN34_10", "Chen2021LTD_WRN34_20", "Standard", "Kang2021Stable",
        "Jia2022LAS-AT_34_10", "Jia2022LAS-AT_70_16", "Pang2022Robustness_WRN28_10",
        "Pang2022Robustness_WRN70_16", "Addepalli2022Efficient_RN18",
        "Addepalli2022Efficient_WRN_34_10", "Debenedetti2022Light_XCiT-S12",
        "Debenedetti2022Light_XCiT-M12", "Debenedetti2022Light_XCiT-L12",
        "Huang2022Revisiting_WRN-A4", "Wang2023Better_WRN-28-10", "Wang2023Better_WRN-70-16",
        "Xu2023Exploring_WRN-28-10", "Cui2023Decoupled_WRN-28-10", "Cui2023Decoupled_WRN-34-10",
        "Bai2023Improving_edm", "Peng2023Robust", "Bai2024MixedNUTS", "Chen2024Data_WRN_34_10",
        "Chen2024Data_WRN_34_20", "Amini2024MeanSparse_Ra_WRN_70_16",
        "Amini2024MeanSparse_S-WRN-94-16", "Bartoldson2024Adversarial_WRN-94-16",
        "Bartoldson2024Adversarial_WRN-82-8",
    ),
    ("cifar10", "L2"): (
        "Augustin2020Adversarial", "Engstrom2019Robustness", "Rice2020Overfitting",
        "Rony2019Decoupling", "Standard", "Ding2020MMA", "Wu2020Adversarial", "Gowal2020Uncovering",
        "Gowal2020Uncovering_extra", "Sehwag2021Proxy", "Sehwag2021Proxy_R18",
        "Rebuffi2021Fixing_70_16_cutmix_ddpm", "Rebuffi2021Fixing_28_10_cutmix_ddpm",
        "Rebuffi2021Fixing_70_16_cutmix_extra", "Augustin2020Adversarial_34_10",
        "Augustin2020Adversarial_34_10_extra", "Rebuffi2021Fixing_R18_cutmix_ddpm",
        "Rade2021Helper_R18_ddpm", "Wang2023Better_WRN-28-10", "Wang2023Better_WRN-70-16",
        "Amini2024MeanSparse_S-WRN-70-16",
    ),
    ("cifar10", "corruptions"): (
        "Diffenderfer2021Winning_LRR", "Diffenderfer2021Winning_LRR_CARD_Deck",
        "Diffenderfer2021Winning_Binary", "Diffenderfer2021Winning_Binary_CARD_Deck",
        "Rebuffi2021Fixing_70_16_cutmix_extra_Linf", "Rebuffi2021Fixing_70_16_cutmix_extra_L2",
        "Hendrycks2020AugMix_WRN", "Hendrycks2020AugMix_ResNeXt",
        "Kireev2021Effectiveness_Gauss50percent", "Kireev2021Effectiveness_AugMixNoJSD",
        "Kireev2021Effectiveness_RLAT", "Kireev2021Effectiveness_RLATAugMixNoJSD",
        "Kireev2021Effectiveness_RLATAugMix", "Standard", "Addepalli2021Towards_WRN34",
        "Modas2021PRIMEResNet18", "Addepalli2022Efficient_WRN_34_10",
    ),
    ("cifar100", "Linf"): (
        "Gowal2020Uncovering", "Gowal2020Uncovering_extra", "Cui2020Learnable_34_20_LBGAT6",
        "Cui2020Learnable_34_10_LBGAT0", "Cui2020Learnable_34_10_LBGAT6", "Chen2020Efficient",
        "Wu2020Adversarial", "Sehwag2021Proxy", "Sitawarin2020Improving", "Hendrycks2019Using",
        "Rice2020Overfitting", "Rebuffi2021Fixing_70_16_cutmix_ddpm",
        "Rebuffi2021Fixing_28_10_cutmix_ddpm", "Rebuffi2021Fixing_R18_ddpm",
        "Rade2021Helper_R18_ddpm", "Addepalli2021Towards_PARN18", "Addepalli2021Towards_WRN34",
        "Chen2021LTD_WRN34_10", "Pang2022Robustness_WRN28_10", "Pang2022Robustness_WRN70_16",
        "Jia2022LAS-AT_34_10", "Jia2022LAS-AT_34_20", "Addepalli2022Efficient_RN18",
        "Addepalli2022Efficient_WRN_34_10", "Debenedetti2022Light_XCiT-S12",
        "Debenedetti2022Light_XCiT-M12", "Debenedetti2022Light_XCiT-L12",
        "Cui2020Learnable_34_10_LBGAT9_eps_8_255", "Wang2023Better_WRN-28-10",
        "Wang2023Better_WRN-70-16", "Bai2023Improving_edm", "Bai2023Improving_trades",
        "Cui2023Decoupled_WRN-28-10", "Cui2023Decoupled_WRN-34-10",
        "Cui2023Decoupled_WRN-34-10_autoaug", "Bai2024MixedNUTS", "Chen2024Data_WRN_34_10",
        "Amini2024MeanSparse_S-WRN-70-16",
    ),
    ("cifar100", "corruptions"): (
        "Diffenderfer2021Winning_LRR", "Diffenderfer2021Winning_LRR_CARD_Deck",
        "Diffenderfer2021Winning_Binary", "Diffenderfer2021Winning_Binary_CARD_Deck",
        "Gowal2020Uncovering_Linf", "Gowal2020Uncovering_extra_Linf", "Hendrycks2020AugMix_WRN",
        "Hendrycks2020AugMix_ResNeXt", "Addepalli2021Towards_PARN18", "Addepalli2021Towards_WRN34",
        "Modas2021PRIMEResNet18", "Addepalli2022Efficient_WRN_34_10",
    ),
    ("imagenet", "Linf"): (
        "Wong2020Fast", "Engstrom2019Robustness", "Salman2020Do_R50", "Salman2020Do_R18",
        "Salman2020Do_50_2", "Standard_R50", "Debenedetti2022Light_XCiT-S12",
        "Debenedetti2022Light_XCiT-M12", "Debenedetti2022Light_XCiT-L12",
        "Singh2023Revisiting_ViT-S-ConvStem", "Singh2023Revisiting_ViT-B-ConvStem",
        "Singh2023Revisiting_ConvNeXt-T-ConvStem", "Singh2023Revisiting_ConvNeXt-S-ConvStem",
        "Singh2023Revisiting_ConvNeXt-B-ConvStem", "Singh2023Revisiting_ConvNeXt-L-ConvStem",
        "Liu2023Comprehensive_ConvNeXt-B", "Liu2023Comprehensive_ConvNeXt-L",
        "Liu2023Comprehensive_Swin-B", "Liu2023Comprehensive_Swin-L", "Peng2023Robust",
        "Bai2024MixedNUTS", "Chen2024Data_WRN_50_2", "Mo2022When_Swin-B", "Mo2022When_ViT-B",
        "Amini2024MeanSparse_ConvNeXt-L", "Amini2024MeanSparse_Swin-L",
        "RodriguezMunoz2024Characterizing_Swin-B", "RodriguezMunoz2024Characterizing_Swin-L",
        "Xu2024MIMIR_Swin-B", "Xu2024MIMIR_Swin-L",
    ),
    ("imagenet", "corruptions"): (
        "Erichson2022NoisyMix", "Erichson2022NoisyMix_new", "Geirhos2018_SIN", "Geirhos2018_SIN_IN",
        "Geirhos2018_SIN_IN_IN", "Hendrycks2020Many", "Hendrycks2020AugMix",
        "Salman2020Do_50_2_Linf", "Standard_R50", "AlexNet", "Tian2022Deeper_DeiT-S",
        "Tian2022Deeper_DeiT-B",
    ),
}

#: Ensembles: RobustBench saves member i as ``<name>.pt_m<i>.pt``.
ENSEMBLES: dict[str, int] = {
    "cifar10:Linf:Chen2020Adversarial": 3,
    "cifar10:Linf:Bai2023Improving_edm": 3,
    "cifar10:Linf:Bai2024MixedNUTS": 2,
    "cifar10:corruptions:Diffenderfer2021Winning_LRR_CARD_Deck": 6,
    "cifar10:corruptions:Diffenderfer2021Winning_Binary_CARD_Deck": 6,
    "cifar100:Linf:Bai2023Improving_edm": 3,
    "cifar100:Linf:Bai2023Improving_trades": 3,
    "cifar100:Linf:Bai2024MixedNUTS": 2,
    "cifar100:corruptions:Diffenderfer2021Winning_LRR_CARD_Deck": 6,
    "cifar100:corruptions:Diffenderfer2021Winning_Binary_CARD_Deck": 6,
    "imagenet:Linf:Bai2024MixedNUTS": 2,
}

#: Weights fetched by timm or torchvision from a URL (into torch.hub"s cache), not from Google Drive.
HUB: dict[str, str] = {
    "cifar10:Linf:Debenedetti2022Light_XCiT-S12": "https://github.com/RobustBench/robustbench/releases/download/v1.1/debenedetti2022light-xcit-s-cifar10-linf.pth.tar",
    "cifar10:Linf:Debenedetti2022Light_XCiT-M12": "https://github.com/RobustBench/robustbench/releases/download/v1.1/debenedetti2022light-xcit-m-cifar10-linf.pth.tar",
    "cifar10:Linf:Debenedetti2022Light_XCiT-L12": "https://github.com/RobustBench/robustbench/releases/download/v1.1/debenedetti2022light-xcit-l-cifar10-linf.pth.tar",
    "cifar100:Linf:Debenedetti2022Light_XCiT-S12": "https://github.com/RobustBench/robustbench/releases/download/v1.1/debenedetti2022light-xcit-s-cifar100-linf.pth.tar",
    "cifar100:Linf:Debenedetti2022Light_XCiT-M12": "https://github.com/RobustBench/robustbench/releases/download/v1.1/debenedetti2022light-xcit-m-cifar100-linf.pth.tar",
    "cifar100:Linf:Debenedetti2022Light_XCiT-L12": "https://github.com/RobustBench/robustbench/releases/download/v1.1/debenedetti2022light-xcit-l-cifar100-linf.pth.tar",
    "imagenet:Linf:Standard_R50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "imagenet:Linf:Debenedetti2022Light_XCiT-S12": "https://github.com/RobustBench/robustbench/releases/download/v1.1/debenedetti2022light-xcit-s-imagenet-linf.pth.tar",
    "imagenet:Linf:Debenedetti2022Light_XCiT-M12": "https://github.com/RobustBench/robustbench/releases/download/v1.1/debenedetti2022light-xcit-m-imagenet-linf.pth.tar",
    "imagenet:Linf:Debenedetti2022Light_XCiT-L12": "https://github.com/RobustBench/robustbench/releases/download/v1.1/debenedetti2022light-xcit-l-imagenet-linf.pth.tar",
    "imagenet:corruptions:Standard_R50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "imagenet:corruptions:AlexNet": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "imagenet:corruptions:Tian2022Deeper_DeiT-S": "https://github.com/RobustBench/robustbench/releases/download/v1.1.1-test/tian2022deeper-deit-s.pth",
    "imagenet:corruptions:Tian2022Deeper_DeiT-B": "https://github.com/RobustBench/robustbench/releases/download/v1.1.1-test/tian2022deeper-deit-b.pth",
}

#: Input sides other than the dataset"s (ImageNet 224, CIFAR 32): RobustBench"s "Crop288".
SIDES: dict[str, int] = {
    "imagenet:Linf:Wong2020Fast": 288,
}
