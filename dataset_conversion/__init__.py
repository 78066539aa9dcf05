"""nnU-Net v2 raw dataset builders from click annotations: one module per dataset layout (``paseg_convert``,
``vs_tcia``, ``brats2019``) and the dataset writer they share (``raw_dataset.build_dataset`` and the modules of its
steps)."""
