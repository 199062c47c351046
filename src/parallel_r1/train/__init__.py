"""Training: SFT and GRPO on TRL with the project's engine, recipes, checkpoints and resume.

The only package that imports TRL, accelerate and peft (inside functions where it can, so
importing `parallel_r1.train` itself stays cheap). Never imports a web framework or typer.
"""
