//! The Todo scenario's rules, from its roles:
//!
//! - `viewer`: view the todo list (`can_read_todos`) and users (`can_read_user`);
//! - `editor`: `viewer`, plus create todos (`can_create_todo`) and update and delete
//!   the todos the user owns;
//! - `admin`: `editor`, plus delete any todo (`can_delete_todo`);
//! - `evil_genius`: `editor`, plus update any todo (`can_update_todo`).
//!
//! The scenario makes both reads true for every user. A todo's owner is its
//! `resource.properties.ownerID`, the owner's user id (email). Roles come from the PIP
//! (`users.json`) only: roles a caller sends in `subject.properties` are ignored, so a
//! PEP cannot grant its users more than the directory does. An unknown subject, an
//! unknown permission or a resource of the wrong type is denied with its reason.

use arbiter_policy::{AttributesExt, Reason, Request, Verdict};
use authzen_scenarios::users::{User, Users};

/// The permissions, as AuthZEN action names.
pub const ACTIONS: [&str; 5] = [
    "can_read_user",
    "can_read_todos",
    "can_create_todo",
    "can_update_todo",
    "can_delete_todo",
];

/// One of the Todo application's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// View a user's information.
    ReadUser,
    /// View all todos.
    ReadTodos,
    /// Create a todo.
    CreateTodo,
    /// (Un)complete a todo.
    UpdateTodo,
    /// Delete a todo.
    DeleteTodo,
}

impl Permission {
    /// The permission an action name asks for.
    pub fn of(action: &str) -> Option<Self> {
        Some(match action {
            "can_read_user" => Self::ReadUser,
            "can_read_todos" => Self::ReadTodos,
            "can_create_todo" => Self::CreateTodo,
            "can_update_todo" => Self::UpdateTodo,
            "can_delete_todo" => Self::DeleteTodo,
            _ => return None,
        })
    }

    /// The type of the resource it applies to.
    fn resource_type(self) -> &'static str {
        match self {
            Self::ReadUser => "user",
            _ => "todo",
        }
    }

    /// What it lets a user do, for messages: a verb and what it acts on.
    fn doing(self) -> (&'static str, &'static str) {
        match self {
            Self::ReadUser => ("view", "users"),
            Self::ReadTodos => ("view", "todos"),
            Self::CreateTodo => ("create", "todos"),
            Self::UpdateTodo => ("update", "todos"),
            Self::DeleteTodo => ("delete", "todos"),
        }
    }
}

/// Which todos a grant covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Those the user owns.
    Own,
    /// Any todo.
    Any,
}

/// A role: the roles it includes and what it grants on top of them.
#[derive(Debug)]
struct Role {
    name: &'static str,
    includes: &'static [&'static str],
    grants: &'static [(Permission, Scope)],
}

/// The scenario's roles. Reads are not here: they are open to every user.
const ROLES: &[Role] = &[
    Role {
        name: "viewer",
        includes: &[],
        grants: &[],
    },
    Role {
        name: "editor",
        includes: &["viewer"],
        grants: &[
            (Permission::CreateTodo, Scope::Any),
            (Permission::UpdateTodo, Scope::Own),
            (Permission::DeleteTodo, Scope::Own),
        ],
    },
    Role {
        name: "admin",
        includes: &["editor"],
        grants: &[(Permission::DeleteTodo, Scope::Any)],
    },
    Role {
        name: "evil_genius",
        includes: &["editor"],
        grants: &[(Permission::UpdateTodo, Scope::Any)],
    },
];

/// The widest scope in which `role` (with the roles it includes) grants `p`.
fn granted(role: &str, p: Permission) -> Option<Scope> {
    let role = ROLES.iter().find(|r| r.name == role)?;
    let own = role.grants.iter().filter(|(g, _)| *g == p).map(|(_, s)| *s);
    // The role graph is a fixed tree (checked by a test), so this recursion ends.
    let included = role.includes.iter().filter_map(|r| granted(r, p));
    own.chain(included).max()
}

/// The widest scope in which any of the user's roles grants `p`, and the role.
fn best_grant(user: &User, p: Permission) -> Option<(Scope, &str)> {
    user.roles
        .iter()
        .filter_map(|r| granted(r, p).map(|s| (s, r.as_str())))
        .max_by_key(|(s, _)| *s)
}

fn reason(code: &str, caller: &str, admin: String) -> Reason {
    Reason::new(code, caller).admin(format!("authzen-todo: {admin}"))
}

/// Decides one request against the users of the PIP.
pub fn decide(users: &Users, r: &Request) -> Verdict {
    let Some(user) = users.find(&r.principal.id) else {
        return Verdict::deny(reason(
            "unknown-subject",
            "the subject is not a user of the Todo application",
            format!("no user with PID or id `{}`", r.principal.id),
        ));
    };
    let Some(p) = Permission::of(&r.action.name) else {
        return Verdict::deny(reason(
            "unknown-action",
            "the action is not a Todo permission: use can_read_user, can_read_todos, can_create_todo, can_update_todo or can_delete_todo",
            format!("action `{}`", r.action.name),
        ));
    };
    if r.resource.kind != p.resource_type() {
        return Verdict::deny(reason(
            "wrong-resource-type",
            &format!(
                "`{}` applies to resources of type `{}`",
                r.action.name,
                p.resource_type()
            ),
            format!("resource type `{}`", r.resource.kind),
        ));
    }
    let (verb, what) = p.doing();
    if matches!(p, Permission::ReadUser | Permission::ReadTodos) {
        return Verdict::allow_because(reason(
            "open-to-every-user",
            &format!("every user may {verb} {what}"),
            format!("{} may {verb} {what}", user.id),
        ));
    }
    let owner = r.resource.attributes.str("ownerID");
    match best_grant(user, p) {
        Some((Scope::Any, role)) => Verdict::allow_because(reason(
            "role-permits",
            &if p == Permission::CreateTodo {
                format!("the `{role}` role may {verb} {what}")
            } else {
                format!("the `{role}` role may {verb} any of the {what}")
            },
            format!("{} holds `{role}`", user.id),
        )),
        Some((Scope::Own, role)) if owner == Some(user.id.as_str()) => {
            Verdict::allow_because(reason(
                "owner-permits",
                &format!("the `{role}` role may {verb} the {what} you own"),
                format!("{} holds `{role}` and owns the todo", user.id),
            ))
        }
        Some((Scope::Own, role)) => Verdict::deny(reason(
            "not-todo-owner",
            &format!("the `{role}` role may {verb} only the {what} you own"),
            format!("{} does not own the todo (its ownerID: {owner:?})", user.id),
        )),
        None => Verdict::deny(reason(
            "role-lacks-permission",
            &format!("none of your roles may {verb} {what}"),
            format!("{} holds {:?}", user.id, user.roles),
        )),
    }
}

#[cfg(test)]
mod tests;
