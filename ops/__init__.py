"""Operators' commands against a deployed Serverlesspresso stack (`make deploy`, `make barista`).

Each command finds its stack from samconfig.toml (ops/stack.py), checks the AWS credentials, region
and stack first (the pre-flight), and says what is wrong in one line, without a stack trace, when a
check fails. The local engine (`make local`) needs none of this: it has its own sign-in
(`make token USER=... ROLE=barista`).
"""
