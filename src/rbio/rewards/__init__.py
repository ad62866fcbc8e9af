"""Rewards for GRPO: format, mention, answer and the Gene Ontology rewards.

``rbio.rewards.registry`` names them and composes a variant's rewards; ``rbio.rewards.parsing``
reads a completion once for all of them (and gives evaluation its yes/no).
"""
