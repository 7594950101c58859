"""pepcurr: measure when, and how strongly, to switch on mass-physics losses
while training de novo peptide sequencing transformers."""

__version__ = "0.1.0"
