"""approval: approval policies, operators' approval flags, approval requests and their
stage decisions (issue 17). Drafts are composition's; sending is outbound's."""
