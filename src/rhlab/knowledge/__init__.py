"""Imparting hack knowledge: system-prompt framings (`prompts`), synthetic document finetuning (`sdf`, `corpus`,
`finetune`) and propensity probes (`probe`). See docs/knowledge.md.

Layering: may import rhlab.envs / hacks / sandbox and rhlab.models; never train, evals or experiments.
"""
