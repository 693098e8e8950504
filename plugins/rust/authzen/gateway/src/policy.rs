//! The gateway's rules: route-level ("medium-grained") authorization. The gateway does
//! not know who owns a todo, so it lets through every user whose roles could be allowed
//! by the application, which then decides on the todo itself (`authzen-todo`):
//!
//! | route | who may call it |
//! | --- | --- |
//! | `GET /users/{userId}`, `GET /todos` | every user |
//! | `POST /todos` | `admin`, `editor` |
//! | `PUT /todos/{todoId}` | `evil_genius`, `editor` |
//! | `DELETE /todos/{todoId}` | `admin`, `editor` |
//!
//! The action name is the HTTP method and the resource, of type `route`, is the route:
//! its template as the scenario sends it (`/todos/{todoId}`) or a concrete path
//! (`/todos/7240d0db`), where a `{name}` segment stands for any one segment. Roles come
//! from the PIP (`users.json`) only. An unknown subject, a resource that is not a
//! route, or a method and route the application does not serve is denied with its
//! reason.

use arbiter_policy::{Reason, Request, Verdict};
use authzen_scenarios::users::Users;

/// The HTTP methods the routes take, as AuthZEN action names.
pub const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
enum Callers {
    /// Every user the PIP knows.
    EveryUser,
    /// Users holding at least one of these roles.
    AnyRole(&'static [&'static str]),
}

/// One route of the Todo application.
#[derive(Debug)]
struct Route {
    method: &'static str,
    template: &'static str,
    callers: Callers,
}

const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        template: "/users/{userId}",
        callers: Callers::EveryUser,
    },
    Route {
        method: "GET",
        template: "/todos",
        callers: Callers::EveryUser,
    },
    Route {
        method: "POST",
        template: "/todos",
        callers: Callers::AnyRole(&["admin", "editor"]),
    },
    Route {
        method: "PUT",
        template: "/todos/{todoId}",
        callers: Callers::AnyRole(&["evil_genius", "editor"]),
    },
    Route {
        method: "DELETE",
        template: "/todos/{todoId}",
        callers: Callers::AnyRole(&["admin", "editor"]),
    },
];

/// Whether `path` is an instance of `template`: the same segments, where a `{name}`
/// segment of the template stands for any one non-empty segment.
fn matches(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) if ts.starts_with('{') && ts.ends_with('}') => {
                if ps.is_empty() {
                    return false;
                }
            }
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return false,
        }
    }
}

fn reason(code: &str, caller: &str, admin: String) -> Reason {
    Reason::new(code, caller).admin(format!("authzen-gateway: {admin}"))
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
    if r.resource.kind != "route" {
        return Verdict::deny(reason(
            "wrong-resource-type",
            "the gateway decides on resources of type `route`",
            format!("resource type `{}`", r.resource.kind),
        ));
    }
    let (method, path) = (r.action.name.as_str(), r.resource.id.as_str());
    let on_path = || ROUTES.iter().filter(|route| matches(route.template, path));
    let Some(route) = on_path().find(|route| route.method == method) else {
        let served: Vec<&str> = on_path().map(|route| route.method).collect();
        return Verdict::deny(if served.is_empty() {
            reason(
                "unknown-route",
                "the Todo application serves no such route",
                format!("route `{path}`"),
            )
        } else {
            reason(
                "method-not-served",
                &format!("this route takes {}", served.join(", ")),
                format!("`{method}` on `{path}`"),
            )
        });
    };
    let call = format!("{} {}", route.method, route.template);
    match route.callers {
        Callers::EveryUser => Verdict::allow_because(reason(
            "open-route",
            &format!("every user may call {call}"),
            format!("{} calls {call}", user.id),
        )),
        Callers::AnyRole(roles) => match roles.iter().find(|role| user.has_role(role)) {
            Some(role) => Verdict::allow_because(reason(
                "role-permits",
                &format!("the `{role}` role may call {call}"),
                format!("{} holds `{role}`", user.id),
            )),
            None => Verdict::deny(reason(
                "role-lacks-route",
                &format!("calling {call} needs one of the roles {}", roles.join(", ")),
                format!("{} holds {:?}", user.id, user.roles),
            )),
        },
    }
}

#[cfg(test)]
mod tests;
