"""A tiny recursive model: one shared block refines an answer for every position at once.

The presets ``trm-tiny`` and ``trm-base`` are parallel (non-autoregressive)
models after the Tiny Recursive Model (TRM; Jolicoeur-Martineau 2025,
arXiv 2510.04871) and after the model pepTRM describes (github
jasegehring/pepTRM): an encoder over the peaks, then one small network with
shared weights applied again and again to a latent state ``z`` and an answer
``y`` that covers every position of a fixed canvas, each refinement step's
answer supervised ("deep supervision"). Written for pepcurr; the sources and
the measurements behind the choices are in ``docs/models.md``.

- **Memory**: pepcurr's peak encoder (``transformer.encode_peaks``) with the
  precursor (mass encoding plus charge embedding) as one more token.
- **Canvas**: ``W = max_peptide_length + 1`` positions; the answer ``y`` is
  logits ``[B, W, V]`` (residue ``i`` at position ``i``, ``<eos>`` after the
  last residue, anything after it unsupervised), ``z`` is ``[B, W, D]``; both
  start from buffers (zeros, and small random values drawn at construction).
- **Core**: ``core_layers`` pre-norm layers of non-causal self-attention
  over the canvas, cross-attention to the memory and a feed-forward network,
  shared by every update.
- **One cycle** at supervision step ``s``::

      a = W_a softmax(y) + position        # soft embedding of the previous answer
      x = a + step[s] (+ ion evidence)     # learned step embedding
      latent_updates times: z = core(z + x)
      h = z ("head")  or  core(z + a) ("core": TRM's answer update through the same net)
      y = head(LN(h)) (+ ion-evidence logit bias)

- **A supervision step** runs ``cycles`` cycles, the first ``cycles - 1``
  without gradient (TRM), and emits ``y``; ``(z, y)`` are detached between
  steps (TRM's carry), so each step learns to improve the answer it is given.
  ``forward`` returns every step's answer, ``[S, B, W, V]`` (float32), and
  ``step_weights`` weights them linearly, later steps more (pepTRM's
  ``linear``: ``(s + 1) / sum``).
- **Ion evidence** (``ion_evidence``): pepcurr's per-candidate b/y ion
  features (``transformer.CandidateEvidence``) at every position, from the
  prefix masses of the current arg-max answer (an N-terminal modification
  token at position 0 only, as decoding reads it), recomputed every cycle. Exact
  (hard) prefix masses are what make it work: the evidence is 20 ppm wide, and
  the expected masses of a soft answer miss it by Daltons. A cycle then fixes
  about one more position from the N-terminus, so ``supervision_steps *
  cycles`` should reach the longest peptide.

Nothing here reads the batch's target tokens: the model sees the spectra only
(``SpectrumBatch.without_targets``), in training as in decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from curriculum_cli.model.transformer import (
    CandidateEvidence,
    IonEvidenceConfig,
    SinusoidalMassEncoder,
    encode_peaks,
    encode_precursor,
    transformer_decoder,
    transformer_encoder,
)
from curriculum_cli.spectra.batch import SpectrumBatch
from curriculum_cli.spectra.chemistry import MAX_CHARGE
from curriculum_cli.spectra.vocabulary import Vocabulary


@dataclass(frozen=True)
class RecursiveConfig(IonEvidenceConfig):
    """Dimensions and recursion of a ``RecursivePeptideModel`` (``run.json``'s ``architecture``).

    ``kind`` tags the architecture in ``run.json`` (``training.config.Architecture``).
    ``supervision_steps``: answers returned and supervised (``S``); ``cycles``:
    cycles per step, all but the last without gradient (TRM's ``T``);
    ``latent_updates``: updates of ``z`` per cycle (TRM's ``n``);
    ``answer_update``: ``"head"`` (``y`` from ``z`` through the output head) or
    ``"core"`` (through the core first). The ion-evidence options are
    ``transformer.IonEvidenceConfig``'s.
    """

    kind: Literal["recursive"] = "recursive"
    d_model: int = 128
    n_heads: int = 4
    dim_feedforward: int = 512
    n_encoder_layers: int = 2
    core_layers: int = 1
    supervision_steps: int = 4
    cycles: int = 5
    latent_updates: int = 1
    answer_update: Literal["head", "core"] = "head"
    dropout: float = 0.0
    max_peptide_length: int = 20


#: ``trm-tiny`` trains on a CPU (4 supervised steps of 5 cycles: 20 positions resolved, the
#: curricula's longest peptides have 18 residues); ``trm-base`` has ``base``'s width with
#: TRM's two shared layers and pepTRM's 8 supervised steps (see docs/models.md).
RECURSIVE_PRESETS: dict[str, RecursiveConfig] = {
    "trm-tiny": RecursiveConfig(),
    "trm-base": RecursiveConfig(
        d_model=512,
        n_heads=8,
        dim_feedforward=1024,
        n_encoder_layers=9,
        core_layers=2,
        supervision_steps=8,
        cycles=6,
        answer_update="core",
        max_peptide_length=40,
    ),
}


class RecursivePeptideModel(nn.Module):
    """Peaks and precursor in, ``[S, B, W, V]`` logits out: ``S`` refinements of one answer."""

    decoding = "parallel"

    def __init__(self, config: RecursiveConfig, vocab: Vocabulary):
        super().__init__()
        self.config = config
        self.vocab = vocab
        self.max_peptide_length = config.max_peptide_length
        self.canvas = config.max_peptide_length + 1
        d = config.d_model
        self.mass_encoder = SinusoidalMassEncoder(d)
        self.intensity_proj = nn.Linear(1, d)
        self.spectrum_token = nn.Parameter(torch.zeros(1, 1, d))
        self.charge_embedding = nn.Embedding(MAX_CHARGE + 1, d)
        self.encoder = transformer_encoder(
            d, config.n_heads, config.dim_feedforward, config.dropout, config.n_encoder_layers
        )
        self.core = transformer_decoder(
            d, config.n_heads, config.dim_feedforward, config.dropout, config.core_layers
        )
        self.answer_embedding = nn.Linear(vocab.size, d, bias=False)  # of a probability vector
        self.position = nn.Embedding(self.canvas, d)
        self.step_embedding = nn.Embedding(config.supervision_steps, d)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab.size)
        self.evidence = CandidateEvidence.of(config, d, vocab) if config.ion_evidence else None
        # Initial state: buffers, not parameters. The first cycle runs without gradient, so
        # a parameter there would never get one (and DDP refuses parameters without one).
        self.register_buffer("initial_latent", 0.02 * torch.randn(self.canvas, d))
        self.register_buffer("initial_answer", torch.zeros(self.canvas, vocab.size))
        self.register_buffer("token_masses", vocab.residue_masses(), persistent=False)
        self.register_buffer("n_terminal", vocab.n_terminal_mask(), persistent=False)

    def per_token_parameters(self) -> dict[str, tuple[int, int]]:
        """Parameters and buffers holding one slice per vocabulary token: name -> (dimension,
        slice width); what ``token_transfer`` moves when a run fine-tunes into another
        vocabulary."""
        axes = {"answer_embedding.weight": (1, 1), "head.weight": (0, 1), "head.bias": (0, 1),
                "initial_answer": (1, 1)}  # fmt: skip
        if self.evidence is not None:
            axes.update(self.evidence.per_token_parameters("evidence"))
        return axes

    @property
    def step_weights(self) -> tuple[float, ...]:
        """Linear in the step, later steps more: ``(s + 1) / sum`` (pepTRM's ``linear``)."""
        raw = range(1, self.config.supervision_steps + 1)
        return tuple(w / sum(raw) for w in raw)

    def forward(self, batch: SpectrumBatch) -> torch.Tensor:
        """Every supervision step's answer over the canvas, ``[S, B, W, V]`` (float32)."""
        config = self.config
        memory, memory_mask = encode_peaks(self, batch.mz, batch.intensity, batch.peak_mask)
        precursor = encode_precursor(self, batch.precursor_mass_da, batch.precursor_charge)
        memory = torch.cat([precursor.unsqueeze(1), memory], dim=1)
        memory_mask = torch.cat([torch.zeros_like(memory_mask[:, :1]), memory_mask], dim=1)
        n_spectra = len(batch)
        latent = self.initial_latent.expand(n_spectra, -1, -1)
        answer = self.initial_answer.expand(n_spectra, -1, -1)
        grad_allowed = torch.is_grad_enabled()
        answers = []
        for step in range(config.supervision_steps):
            latent, answer = latent.detach(), answer.detach()  # the carry between steps
            for cycle in range(config.cycles):
                with torch.set_grad_enabled(grad_allowed and cycle == config.cycles - 1):
                    latent, answer = self._cycle(step, latent, answer, memory, memory_mask, batch)
            answers.append(answer)
        return torch.stack(answers)

    def _cycle(self, step, latent, answer, memory, memory_mask, batch: SpectrumBatch):
        """One cycle: ``latent_updates`` updates of ``z``, then a new answer ``y``."""
        probabilities = torch.softmax(answer.float(), dim=-1)
        embedded = self.answer_embedding(probabilities) + self.position.weight
        x = embedded + self.step_embedding.weight[step]
        bias = None
        if self.evidence is not None:
            evidence_input, bias = self.evidence(
                self._prefix_masses(answer), batch.precursor_mass_da, batch.precursor_charge,
                batch.mz, batch.intensity, batch.peak_mask,
            )  # fmt: skip
            x = x + evidence_input
        for _ in range(self.config.latent_updates):
            latent = self.core(latent + x, memory, memory_key_padding_mask=memory_mask)
        hidden = latent
        if self.config.answer_update == "core":
            hidden = self.core(latent + embedded, memory, memory_key_padding_mask=memory_mask)
        logits = self.head(self.norm(hidden)).float()
        return latent, logits if bias is None else logits + bias.float()

    def _prefix_masses(self, answer: torch.Tensor) -> torch.Tensor:
        """Summed mass (Da, float32) of the arg-max tokens before each position, ``[B, W]``.

        Looked up in the vocabulary's mass table, never a product with
        probabilities: exact masses, in float32 even under bf16 autocast.
        Special tokens weigh 0 Da; an N-terminal modification counts at
        position 0 only (its mass delta, in every later prefix), as decoding
        reads the answer (``decoding.parallel_decode``).
        """
        if self.vocab.n_terminal_ids:
            later = answer[:, 1:].masked_fill(self.n_terminal, -torch.inf)
            answer = torch.cat([answer[:, :1], later], dim=1)
        mass = self.token_masses[answer.argmax(dim=-1)]
        zero = mass.new_zeros(mass.shape[0], 1)
        return torch.cat([zero, torch.cumsum(mass[:, :-1], dim=-1)], dim=1)
