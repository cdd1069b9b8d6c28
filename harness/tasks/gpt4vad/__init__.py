"""GPT-4V-AD: its kind, region division (SLIC, grid, SAM, official files), the region prompt and parser, image and pixel metrics, its report sections."""
