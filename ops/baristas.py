"""Add or remove a barista: `make barista EMAIL=ana@example.com [ENV=dev|prod] [REMOVE=1]`.

    python -m ops.baristas ana@example.com [--env prod] [--remove]

Adding creates the Cognito user if there is none (Cognito emails an invitation with a temporary
password), re-sends the invitation to a user who never signed in, and puts the user in the
`barista` group. Removing takes the user out of the group (the account stays: a barista is a
customer too). A barista's next sign-in (or token refresh) carries the change.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import boto3

from ops.stack import OperatorError, default_session, locate_stack, output, run_command, stack_outputs
from serverlesspresso.identity import BARISTA_GROUP  # template.yaml's barista UserPoolGroup

USER_POOL_OUTPUT = "UserPoolId"


@dataclass(frozen=True)
class BaristaChange:
    """What adding or removing did, so the command can say it."""

    email: str
    adding: bool
    changed: bool = True  # False: already a barista (adding) or not one (removing)
    created: bool = False  # a new user, invitation emailed
    invited_again: bool = False  # an existing user who never signed in: invitation emailed again

    def __str__(self) -> str:
        if self.created:
            return f"created {self.email}, emailed an invitation, added to the {BARISTA_GROUP} group"
        if self.adding:
            what = f"added to the {BARISTA_GROUP} group" if self.changed else "already a barista"
        else:
            what = f"removed from the {BARISTA_GROUP} group" if self.changed else "was not a barista"
        note = " (invitation emailed again: they have not signed in yet)" if self.invited_again else ""
        return f"{self.email}: {what}{note}"


def add_barista(cognito: Any, user_pool_id: str, email: str) -> BaristaChange:
    """Make `email` a barista: create and invite the user if needed, then add them to the group."""
    user = _find_user(cognito, user_pool_id, email)
    if user is None:
        cognito.admin_create_user(
            UserPoolId=user_pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            DesiredDeliveryMediums=["EMAIL"],
        )
        cognito.admin_add_user_to_group(UserPoolId=user_pool_id, Username=email, GroupName=BARISTA_GROUP)
        return BaristaChange(email, adding=True, created=True)
    invited_again = user["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    if invited_again:
        cognito.admin_create_user(
            UserPoolId=user_pool_id, Username=email, MessageAction="RESEND", DesiredDeliveryMediums=["EMAIL"]
        )
    if _is_barista(cognito, user_pool_id, email):
        return BaristaChange(email, adding=True, changed=False, invited_again=invited_again)
    cognito.admin_add_user_to_group(UserPoolId=user_pool_id, Username=email, GroupName=BARISTA_GROUP)
    return BaristaChange(email, adding=True, invited_again=invited_again)


def remove_barista(cognito: Any, user_pool_id: str, email: str) -> BaristaChange:
    """Take `email` out of the barista group (the user account stays)."""
    if _find_user(cognito, user_pool_id, email) is None:
        raise OperatorError(f"no user {email} in the user pool {user_pool_id}")
    if not _is_barista(cognito, user_pool_id, email):
        return BaristaChange(email, adding=False, changed=False)
    cognito.admin_remove_user_from_group(UserPoolId=user_pool_id, Username=email, GroupName=BARISTA_GROUP)
    return BaristaChange(email, adding=False)


def _find_user(cognito: Any, user_pool_id: str, email: str) -> dict[str, Any] | None:
    try:
        user: dict[str, Any] = cognito.admin_get_user(UserPoolId=user_pool_id, Username=email)
    except cognito.exceptions.UserNotFoundException:
        return None
    return user


def _is_barista(cognito: Any, user_pool_id: str, email: str) -> bool:
    paginator = cognito.get_paginator("admin_list_groups_for_user")
    return any(
        group["GroupName"] == BARISTA_GROUP
        for page in paginator.paginate(UserPoolId=user_pool_id, Username=email)
        for group in page["Groups"]
    )


def main(argv: list[str] | None = None, session: boto3.Session | None = None) -> int:
    """Parse the command line, run the pre-flight, add or remove the barista, say what happened."""
    parser = argparse.ArgumentParser(description="Add (or remove) a Serverlesspresso barista.")
    parser.add_argument("email", help="the barista's email address (their sign-in name)")
    parser.add_argument("--env", default="dev", help="samconfig environment: dev (default) or prod")
    parser.add_argument("--remove", action="store_true", help="remove from the barista group instead")
    args = parser.parse_args(argv)
    if "@" not in args.email:
        raise OperatorError(f"{args.email!r} is not an email address: make barista EMAIL=ana@example.com")
    session = session or default_session()
    where = locate_stack(args.env, session)
    outputs = stack_outputs(session.client("cloudformation", region_name=where.region), where)
    user_pool_id = output(outputs, USER_POOL_OUTPUT, where)
    cognito = session.client("cognito-idp", region_name=where.region)
    change = remove_barista if args.remove else add_barista
    print(f"{where.stack_name} ({where.region}): {change(cognito, user_pool_id, args.email)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_command(main))
