"""Transfer learning through the model contract: off-the-shelf features, linear probes and
fine-tuning (core), and image folders streamed through the folder loader (folder)."""
