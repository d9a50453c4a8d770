//! `kafel_rule` and `kafel_arch`: compiling a service's policy when the configuration
//! loads, so that a policy that does not compile keeps its service from starting.

use std::path::Path;

use kafel::arch::Arch;

use crate::diag::Sink;
use crate::files::Files;
use crate::model::{Policy, Service};
use crate::service::Draft;

/// xinetd-kafel compiles for x86-64 only.
const DEFAULT_ARCHES: [Arch; 1] = [Arch::X86_64];

/// Compiles the service's policy, if it names one. Returns false if it cannot be used.
pub(crate) fn attach(
    service: &mut Service,
    draft: &Draft,
    files: &dyn Files,
    sink: &mut Sink,
) -> bool {
    let arches = draft
        .kafel_arch
        .clone()
        .unwrap_or_else(|| DEFAULT_ARCHES.to_vec());
    let Some(path) = &draft.kafel_rule else {
        if draft.kafel_arch.is_some() {
            sink.warning(
                &service.location,
                format!(
                    "service {}: kafel_arch without kafel_rule has no effect",
                    service.name
                ),
            );
        }
        return true;
    };
    let policy = Policy {
        path: path.clone(),
        arches,
        program: None,
    };
    let ok = compile(service, &policy, path, files, sink);
    service.policy = Some(policy);
    ok
}

fn compile(
    service: &Service,
    _policy: &Policy,
    path: &Path,
    files: &dyn Files,
    sink: &mut Sink,
) -> bool {
    if let Err(e) = files.read(path) {
        sink.error(
            &service.location,
            format!("kafel_rule: cannot read '{}': {e}", path.display()),
        );
        return false;
    }
    // TODO: compile with kafel::compile once the front end is merged; until then a
    // service with a policy must not start without its filter.
    sink.error(
        &service.location,
        "kafel_rule: this build cannot compile policies yet",
    );
    false
}
