"""Deploying to AWS: the CloudFormation resources merged into `chalice package`'s
template (resources.py), the offline SAM translation (translate.py) and the stack's
outputs as environment variables (outputs.py)."""
