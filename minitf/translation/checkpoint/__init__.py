"""Translation checkpoints: the safetensors files `minitf train` writes, and version 1 `.npz` files."""
from ...serialization import CheckpointError
from .safetensors import FORMAT, VERSION, load_checkpoint, save_checkpoint

__all__ = ["CheckpointError", "FORMAT", "VERSION", "load_checkpoint", "save_checkpoint"]
