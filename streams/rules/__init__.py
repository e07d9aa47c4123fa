"""Rules: the contract (:mod:`.model`), the closed registry of rule types (:mod:`.registry`)
and the compiled, indexed rule set the worker swaps atomically (:mod:`.ruleset`)."""
