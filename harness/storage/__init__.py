"""Reading and writing files: atomic writes and safe text and JSON reading, paths kept inside their root, --data sources, the response cache."""
