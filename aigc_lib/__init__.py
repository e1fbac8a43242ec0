"""aigc_lib: edge AIGC serving -- probabilistic model assignment and annealing resource allocation.

The library the notebooks teach (see ``notebooks/``). The simulation side (``prompts``,
``scenario``, ``assignment``, ``allocation``, ``simulation``, ``fit``) imports numpy, scipy and
pandas only; the measurement side (``models``, ``scoring``, ``sweep``, ``flops``) imports torch,
diffusers and transformers, and is imported only where needed.
"""

__version__ = "0.1.0"
