"""nnU-Net v2 raw dataset builders from click annotations (one module per dataset layout)."""
