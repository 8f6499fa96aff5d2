"""The networks: the CNN cell and proxy/ShrinkCNN nets, the DAG RNN language model, their
cost (params, MACs, FLOPs) and the evaluation passes shared by search and final training.

May import: core.cell, core.data, and the base modules (errors, seeds, result).
"""
