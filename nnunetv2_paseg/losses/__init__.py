"""PA-Seg regularisation losses."""
