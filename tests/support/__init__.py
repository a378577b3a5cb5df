"""Test helpers shared by the tests, the end-to-end tests and the benchmarks.

Fakes on loopback (`httpfakes`; the fake Label Studio is `relaxml.testing.FakeLabelStudio`),
the real Label Studio harness (`labelstudio`, `processes`, `browser`), the Label Studio RLE
reference (`rle_reference`) and the models the tests serve (`models`, and the `*_model` files
served by path as `tests/support/<name>_model.py:<Class>`).
"""
