# The reference policy (shared/reference-policy.md) in Rego v1, for regorus (its
# interpreter and its RVM run this same file). `decision` is the entry point:
# {"outcome": "allow" | "deny" | "require-approval", "rules": {rule ids}}.
#
# The input is the Arbiter request as JSON (principal, delegation, action, resource,
# intent, context) with `approved` beside it: true when the host has verified an
# approval. Missing inputs read as in the other implementations: a missing risk counts
# as maximal, a missing hour as outside business hours, a missing team or owner never
# matches (comparisons with undefined are undefined).
package arbiter

import rego.v1

default risk := 100

risk := input.context.risk if is_number(input.context.risk)

privilege := input.action.privilege

agent if input.principal.kind == "agent"

prod if input.resource.attributes.env == "prod"

same_team if input.principal.attributes.team == input.resource.attributes.owner_team

delegator_same_team if input.delegation[0].attributes.team == input.resource.attributes.owner_team

business_hours if {
	is_number(input.context.hour)
	8 <= input.context.hour
	input.context.hour < 18
}

# Not a valid address (undefined in non-strict mode) is not corporate.
corporate_ip if net.cidr_contains("10.0.0.0/8", input.context.source_ip)

mfa if input.context.mfa == true

approved if input.approved == true

# Forbid: any match denies.

forbid contains "F1" if risk >= 80

forbid contains "F2" if {
	agent
	privilege == "admin"
	prod
}

forbid contains "F3" if {
	privilege == "write"
	prod
	not business_hours
}

forbid contains "F4" if {
	count(input.delegation) > 0
	not delegator_same_team
}

forbid contains "F5" if {
	input.action.name == "secrets:Read"
	input.intent.ticket == ""
}

forbid contains "F5" if {
	input.action.name == "secrets:Read"
	risk >= 50
}

forbid contains "F6" if {
	privilege in {"admin", "identity-change"}
	not corporate_ip
}

# Permit: at least one must match.

permit contains "P1" if {
	privilege == "read"
	same_team
}

permit contains "P2" if {
	privilege == "read"
	input.resource.attributes.env == "staging"
}

permit contains "P3" if {
	privilege == "write"
	same_team
}

permit contains "P4" if {
	privilege == "admin"
	same_team
	input.principal.kind != "human"
}

permit contains "P4" if {
	privilege == "admin"
	same_team
	mfa
}

permit contains "P5" if {
	privilege == "identity-change"
	input.principal.attributes.team == "security"
}

permit contains "P5" if {
	privilege == "identity-change"
	same_team
	input.principal.kind == "human"
	mfa
}

# Gate: require human approval unless approved.

gate contains "G1" if {
	agent
	privilege == "identity-change"
	not approved
}

gate contains "G2" if {
	agent
	privilege == "write"
	prod
	risk >= 50
	not approved
}

gate contains "G3" if {
	privilege == "admin"
	prod
	not approved
}

gate contains "G4" if {
	input.intent.purpose == "data-export"
	input.resource.kind in {"database", "s3_bucket", "s3_object"}
	not approved
}

# Any forbid denies; else no permit denies; else any gate holds for approval; else allow.
decision := {"outcome": "deny", "rules": forbid} if {
	count(forbid) > 0
} else := {"outcome": "deny", "rules": set()} if {
	count(permit) == 0
} else := {"outcome": "require-approval", "rules": gate} if {
	count(gate) > 0
} else := {"outcome": "allow", "rules": permit}
