"""The policy language: models, loader and the checks across entries."""
