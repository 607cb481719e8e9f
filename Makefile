# Top-level Makefile: every fragment in mk/ adds its own targets.
-include mk/*.mk
