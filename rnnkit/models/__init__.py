"""Task models built on rnnkit's recurrent layers."""
from rnnkit.models.language_model import LanguageModel, LMConfig

CharLM = LanguageModel   # the usual name when tokens are characters

__all__ = ["LanguageModel", "LMConfig", "CharLM"]
