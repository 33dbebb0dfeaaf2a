//! A primitive's declaration, made where it is registered: its name, its parameters' names, its
//! doc line and what calling it does to the cluster. Registration writes the names and the doc
//! into rhai's metadata (read by `runbook functions` and the REPL's `:help`); the effect is read
//! by the journal wrapper (lease, step events, what a resumed run replays) and by lint.

use std::any::{TypeId, type_name};

use rhai::{Engine, FuncRegistration, RhaiNativeFunc};

/// What calling a primitive does to the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Reads it, or only the run's own state.
    Reads,
    /// Reads it, and the operator follows it as a step of the run (a health check, a wait, the
    /// preflight gates): it is announced when it starts and finishes.
    Checks,
    /// Can change it. The run takes the cluster's lease before the first such call, announces it
    /// as a step, journals it as a change (a resumed run replays its calls up to the last change),
    /// and a runbook that calls it needs the lease (lint).
    Changes,
}

/// A primitive runbooks call on a cluster, as the run treats every call of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Primitive {
    pub name: &'static str,
    pub effect: Effect,
}

impl Primitive {
    pub const fn reads(name: &'static str) -> Self {
        Primitive { name, effect: Effect::Reads }
    }

    pub const fn checks(name: &'static str) -> Self {
        Primitive { name, effect: Effect::Checks }
    }

    pub const fn changes(name: &'static str) -> Self {
        Primitive { name, effect: Effect::Changes }
    }

    pub fn changes_cluster(self) -> bool {
        self.effect == Effect::Changes
    }
}

/// Registers into one engine, and keeps the declaration of every primitive registered.
pub struct Registrar<'e> {
    engine: &'e mut Engine,
    declared: Vec<Primitive>,
}

impl<'e> Registrar<'e> {
    pub fn new(engine: &'e mut Engine) -> Self {
        Registrar { engine, declared: Vec::new() }
    }

    /// Registers `f` as an overload of the primitive `p`: `params` names each of its parameters
    /// (the receiver first), `doc` is its one line in the reference.
    pub fn primitive<A: 'static, const N: usize, const X: bool, R: Clone + Send + Sync + 'static, const F: bool, FUNC>(
        &mut self,
        p: Primitive,
        params: [&str; N],
        doc: &str,
        f: FUNC,
    ) where
        FUNC: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    {
        self.function(p.name, params, doc, f);
        if !self.declared.contains(&p) {
            self.declared.push(p);
        }
    }

    /// Registers a documented function that is no primitive of a cluster (`cluster`, `confirm`,
    /// `sleep`, a method of a returned value): the run never journals it.
    pub fn function<A: 'static, const N: usize, const X: bool, R: Clone + Send + Sync + 'static, const F: bool, FUNC>(
        &mut self,
        name: &str,
        params: [&str; N],
        doc: &str,
        f: FUNC,
    ) where
        FUNC: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    {
        documented(self.engine, name, params, doc, f);
    }

    /// The primitives registered, once each, in registration order.
    pub fn declared(self) -> Vec<Primitive> {
        self.declared
    }
}

/// Registers `f` as `name`, its parameters named `params` (the receiver first) and described by
/// `doc`: the reference (`runbook functions`, `:help`) reads both from rhai's metadata.
pub fn documented<A: 'static, const N: usize, const X: bool, R: Clone + Send + Sync + 'static, const F: bool, FUNC>(
    engine: &mut Engine,
    name: &str,
    params: [&str; N],
    doc: &str,
    f: FUNC,
) where
    FUNC: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
{
    FuncRegistration::new(name)
        .with_comments([format!("/// {doc}")])
        .with_params_info(params_info::<A, N, X, R, F, FUNC>(params))
        .register_into_engine(engine, f);
}

/// rhai's `name: type` per parameter, then the result type (rhai takes a last extra entry as the
/// result): without it the metadata knows only types, and the reference would guess the names.
fn params_info<A: 'static, const N: usize, const X: bool, R: Clone + Send + Sync + 'static, const F: bool, FUNC>(
    names: [&str; N],
) -> Vec<String>
where
    FUNC: RhaiNativeFunc<A, N, X, R, F>,
{
    let mut info: Vec<String> = names.iter().zip(FUNC::param_names()).map(|(n, t)| format!("{n}: {t}")).collect();
    if TypeId::of::<R>() != TypeId::of::<()>() {
        info.push(type_name::<R>().to_string());
    }
    info
}

#[cfg(test)]
mod tests {
    use super::super::primitives;

    #[test]
    fn the_primitives_that_change_the_cluster_are_declared_so() {
        let mut changing: Vec<&str> =
            primitives().into_iter().filter(|p| p.changes_cluster()).map(|p| p.name).collect();
        changing.sort_unstable();
        // These take the lease and mark a run as one that changed the cluster; journals written
        // before calls carried `changes` are read with this same classification.
        assert_eq!(
            changing,
            [
                "add_node",
                "apply",
                "command",
                "del_node",
                "fix",
                "forget",
                "migrate_slot",
                "migrate_slots",
                "rebalance",
                "replicate"
            ]
        );
        let all: Vec<&str> = primitives().into_iter().map(|p| p.name).collect();
        for read in ["nodes", "node", "check", "plan_drain", "preflight", "wait_converged"] {
            assert!(all.contains(&read), "{read} is declared");
        }
    }
}
