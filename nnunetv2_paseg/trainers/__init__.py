"""PA-Seg nnU-Net trainers. Every public class here is found by ``nnUNetv2_train -tr NAME``."""
