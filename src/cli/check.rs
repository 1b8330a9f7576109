//! `sockgen check`: validate a spec, and optionally whether its port can be bound now.

use std::path::Path;
use std::process::ExitCode;

use super::{fail, warn};
use crate::{Error, Overrides};

pub(super) fn check(spec: &Path, target: Overrides, port_free: bool) -> ExitCode {
    let plan = match crate::plan_file(spec, target) {
        Ok(plan) => plan,
        Err(e) => return fail(&e),
    };
    warn(&plan);
    // A client binds no port: there is nothing to find free.
    let port_free = port_free && !plan.is_client();
    if port_free && plan.port != 0 {
        if let Err(error) = crate::troubleshoot::port_is_free(&plan) {
            let owners = crate::troubleshoot::port_owners(plan.port, plan.protocol);
            let held_by = if owners.is_empty() {
                String::new()
            } else {
                format!(" (held by {})", owners.join(", "))
            };
            let source = match crate::SourceFile::read(spec) {
                Ok(s) => s,
                Err(e) => return fail(&Error::Load(e)),
            };
            let mut d = crate::Diagnostic::error(format!(
                "{} port {} on {} cannot be bound now: {error}{held_by}",
                plan.protocol, plan.port, plan.address
            ))
            .with_hint("stop the other server, choose another port, or port 0; `sockgen analyze --port P` shows who uses it");
            if let Some(span) = crate::top_level_value_span(&source, "port") {
                d = d.with_span(span).with_label("in use");
            }
            eprint!(
                "{}",
                crate::Diagnostics {
                    source,
                    items: vec![d]
                }
            );
            return ExitCode::from(1);
        }
    }
    let free = if port_free && plan.port != 0 {
        format!(", {} port {} is free", plan.protocol, plan.port)
    } else {
        String::new()
    };
    println!(
        "{}: ok ({} {} {}, --lang {} --model {}{free})",
        spec.display(),
        plan.protocol,
        plan.handler,
        plan.role,
        plan.lang,
        plan.model
    );
    ExitCode::SUCCESS
}
