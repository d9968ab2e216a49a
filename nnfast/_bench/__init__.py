"""What ``nnfast bench`` and the suites in ``bench/`` share: the contenders, the runner, the table.

- ``competitors``: the benchmarked network in NumPy, PyTorch, JAX and onnxruntime;
- ``run``: times nnfast, the reference and the installed competitors in this
  process, without pytest, into the records ``table`` reads;
- ``table``: the performance issue's side-by-side table (``bench/table.py``);
- ``formatting``: durations, ratios and Markdown tables.
"""
