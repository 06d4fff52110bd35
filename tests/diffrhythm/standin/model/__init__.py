from model.cfm import CFM
from model.dit import DiT

__all__ = ["CFM", "DiT"]
