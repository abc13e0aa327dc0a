//! Planning a submission job by job, so that a rejected submission changes nothing.
//!
//! # Design note
//!
//! The naive way collects the whole submission as `JobSpec`s, checks it, resolves
//! every callback into its own record (a vector of slots and a tree of shapes, about
//! 300 bytes a callback), and only then commits. A submission of a million frame
//! callbacks then holds its specs, its records and the engine at once.
//!
//! A [`Planner`] takes the jobs one at a time instead ([`Registry::plan_job`]), so a host
//! can decode a job, plan it and drop it. What it keeps per callback is a row of three
//! `u32`s (action, shape, first slot) and the callback's slots in one shared vector;
//! shapes are kept once per distinct shape (a million `a && b` frame triggers share
//! one), and a callback's owner and position follow from its job's range of ids.
//!
//! Errors come out as if the whole submission had been checked phase by phase (ids,
//! then process groups, then explicit labels, then each job's body), whatever the order
//! the jobs arrive in: the planner remembers the first error of the earliest phase, and
//! once it has one it only runs the cheaper checks of earlier phases on later jobs.

use hashbrown::{HashMap, HashSet};

use crate::error::LimitName;
use crate::error::{Error, ErrorKind};
use crate::front::ids::{ActionId, CallbackId, Symbol};
use crate::front::model::{JobSpec, Language};
use crate::front::registry::{
    atom_count, dependency_callbacks, id_space, level_of, over_limit, Agenda, JobRecord, Limits, Registry,
};
use crate::front::resolve::{names_parent, resolve, Owner, Resolved, Shape, Slot};

/// The checks of a submission, in the order their errors take precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Ids,
    Groups,
    Labels,
    Body,
}

/// A submission being planned: nothing of it is in the registry yet.
#[derive(Debug)]
pub(crate) struct Planner {
    /// Jobs seen so far.
    count: usize,
    max_id: u64,
    /// The submission's own new process group: the first job's id.
    group: Option<u64>,
    ids: HashSet<u64>,
    /// Explicit labels of this submission, by group.
    labels: HashSet<(u64, Symbol)>,
    jobs: Vec<(u64, JobRecord)>,
    /// Positions of the jobs that take a generated label.
    unlabeled: Vec<usize>,
    callbacks: Planned,
    next_callback: u32,
    /// Instances and trigger atoms planned so far, for the per-submission limits.
    instances: u64,
    atoms: u64,
    error: Option<(Phase, Error)>,
}

/// The callbacks of a plan, compactly: see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Planned {
    first: u32,
    rows: Vec<Row>,
    slots: Vec<Slot>,
    shapes: Vec<Shape>,
    shape_ids: HashMap<Shape, u32>,
}

#[derive(Clone, Copy, Debug)]
struct Row {
    action: ActionId,
    shape: u32,
    slots: u32,
}

/// One callback ready for a matcher, borrowed from a plan or a [`Resolved`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallbackRef<'a> {
    pub id: CallbackId,
    pub owner: Option<u64>,
    pub index: u32,
    pub action: ActionId,
    pub slots: &'a [Slot],
    pub shape: &'a Shape,
}

impl Resolved {
    /// The callback as a matcher reads it.
    pub fn as_ref(&self) -> CallbackRef<'_> {
        CallbackRef {
            id: self.id,
            owner: self.owner,
            index: self.index,
            action: self.action,
            slots: &self.slots,
            shape: &self.shape,
        }
    }
}

/// A submission planned in full and not yet applied.
#[derive(Debug)]
pub(crate) struct Plan {
    pub jobs: Vec<(u64, JobRecord)>,
    pub pgrp: u64,
    callbacks: Planned,
    next_callback: u32,
    /// Where each group's search for generated labels stopped.
    floors: Vec<(u64, u64)>,
}

impl Plan {
    /// Every callback of the plan, in id order.
    pub fn callbacks(&self) -> impl Iterator<Item = CallbackRef<'_>> {
        let planned = &self.callbacks;
        self.jobs.iter().flat_map(move |(id, job)| {
            (0..job.callbacks).map(move |index| {
                let cb = job.first_callback.as_u32() + index;
                let at = (cb - planned.first) as usize;
                let row = planned.rows[at];
                let end = planned.rows.get(at + 1).map_or(planned.slots.len(), |next| next.slots as usize);
                CallbackRef {
                    id: CallbackId::from_u32(cb),
                    owner: Some(*id),
                    index,
                    action: row.action,
                    slots: &planned.slots[row.slots as usize..end],
                    shape: &planned.shapes[row.shape as usize],
                }
            })
        })
    }
}

impl Planned {
    fn push(&mut self, action: ActionId, slots: Vec<Slot>, shape: Shape) {
        let shape = match self.shape_ids.get(&shape) {
            Some(&id) => id,
            None => {
                let id = self.shapes.len() as u32;
                self.shapes.push(shape.clone());
                self.shape_ids.insert(shape, id);
                id
            }
        };
        self.rows.push(Row { action, shape, slots: self.slots.len() as u32 });
        self.slots.extend(slots);
    }
}

impl Registry {
    /// Starts planning a submission.
    pub fn planner(&self) -> Planner {
        Planner {
            count: 0,
            max_id: self.max_id,
            group: None,
            ids: HashSet::new(),
            labels: HashSet::new(),
            jobs: Vec::new(),
            unlabeled: Vec::new(),
            callbacks: Planned { first: self.next_callback, ..Planned::default() },
            next_callback: self.next_callback,
            instances: 0,
            atoms: 0,
            error: None,
        }
    }

    /// Plans the next job of a submission. Errors are kept for [`Registry::finish_plan`].
    pub fn plan_job(&mut self, planner: &mut Planner, spec: &JobSpec) {
        let i = planner.count;
        planner.count += 1;
        let result = self.plan_job_phases(planner, spec, i);
        if let Err((phase, e)) = result {
            if !planner.error.as_ref().is_some_and(|(p, _)| *p <= phase) {
                planner.error = Some((phase, e));
            }
        }
    }

    fn plan_job_phases(&mut self, planner: &mut Planner, spec: &JobSpec, i: usize) -> Result<(), (Phase, Error)> {
        let skip = |phase: Phase, planner: &Planner| planner.error.as_ref().is_some_and(|(p, _)| *p <= phase);
        let id = self.job_id(planner, spec, i).map_err(|e| (Phase::Ids, e))?;
        let group = *planner.group.get_or_insert(id);
        if skip(Phase::Groups, planner) {
            return Ok(());
        }
        let pgrp = match spec.pgrp {
            None => group,
            Some(g) if g == group || self.groups.contains_key(&g) => g,
            Some(g) => {
                let message = format!("job {i}: process group {g} has no live job; expected an existing pgrp");
                return Err((
                    Phase::Groups,
                    Error::new(ErrorKind::UnknownGroup, message).in_job_at(i).in_field("pgrp"),
                ));
            }
        };
        if skip(Phase::Labels, planner) {
            return Ok(());
        }
        let label = self.explicit_label(planner, spec, i, id, pgrp).map_err(|e| (Phase::Labels, e))?;
        if skip(Phase::Body, planner) {
            return Ok(());
        }
        let record = self.plan_body(planner, spec, id, pgrp, label.unwrap_or_default());
        let record = record.map_err(|e| (Phase::Body, e.in_job(i, id)))?;
        if label.is_none() {
            planner.unlabeled.push(planner.jobs.len());
        }
        planner.jobs.push((id, record));
        Ok(())
    }

    fn job_id(&mut self, planner: &mut Planner, spec: &JobSpec, i: usize) -> Result<u64, Error> {
        // One lookup in the live jobs, one in the submission's ids, one in the groups.
        self.plan_steps += 3;
        let bad = |m: String| Error::new(ErrorKind::BadJobId, format!("job {i}: {m}")).in_job_at(i).in_field("id");
        let id = match spec.id {
            Some(id) => id,
            None => planner.max_id.checked_add(1).ok_or_else(|| bad("no job id is left after u64::MAX".into()))?,
        };
        if id == 0 {
            return Err(bad("job id 0 is reserved for `no parent`".into()));
        }
        if self.jobs.contains_key(&id) {
            return Err(bad(format!("job id {id} is already live")));
        }
        if !planner.ids.insert(id) {
            return Err(bad(format!("job id {id} is repeated in the submission")));
        }
        // A submission's first job's id numbers the submission's new process group
        // (spec §8), which its jobs without a `pgrp` join. The id of a group that is
        // still live (its first job removed, others not) is refused there, unless the
        // job names that group as its `pgrp`: taking it would merge the new submission
        // into the old group by accident (README, Semantics).
        if i == 0 && spec.pgrp != Some(id) {
            if let Some(members) = self.groups.get(&id) {
                let live = members.values().min().copied().unwrap_or(id);
                return Err(bad(format!(
                    "job id {id} would start process group {id}, which is still live (job {live}); \
                     expected an id that is not a live group's, or pgrp {id} to join that group"
                )));
            }
        }
        planner.max_id = planner.max_id.max(id);
        Ok(id)
    }

    fn explicit_label(
        &mut self,
        planner: &mut Planner,
        spec: &JobSpec,
        i: usize,
        id: u64,
        pgrp: u64,
    ) -> Result<Option<Symbol>, Error> {
        let Some(label) = &spec.label else { return Ok(None) };
        let bad = |m: String| Error::new(ErrorKind::BadLabel, m).in_field("label").in_job(i, id);
        // Any non-empty label is accepted, as Qube accepts it; one the trigger grammar
        // cannot spell (`job A`, `ribgen-sh010`, `010`) just cannot be named by a
        // trigger. Labels compare ignoring ASCII case (spec §9): the key is lowercase.
        if label.is_empty() {
            return Err(bad("an empty label; expected at least one character".to_string()));
        }
        let sym = self.symbols.intern_lowercase(label);
        self.plan_steps += 2;
        if self.label_live(pgrp, sym) || !planner.labels.insert((pgrp, sym)) {
            return Err(bad(format!("label `{label}` is already used in process group {pgrp}")));
        }
        Ok(Some(sym))
    }

    fn label_live(&self, pgrp: u64, sym: Symbol) -> bool {
        self.groups.get(&pgrp).is_some_and(|g| g.contains_key(&sym))
    }

    /// A job's record and callbacks; its label is filled in later if generated.
    fn plan_body(
        &mut self,
        planner: &mut Planner,
        spec: &JobSpec,
        id: u64,
        pgrp: u64,
        label: Symbol,
    ) -> Result<JobRecord, Error> {
        if spec.subjobs > self.limits.subjobs {
            return Err(Error::new(
                ErrorKind::BadValue,
                format!("{} subjobs is more than the limit of {}", spec.subjobs, self.limits.subjobs),
            )
            .in_field("subjobs"));
        }
        // A job has at least one instance, subjob 0 (spec §9).
        planner.instances = planner.instances.saturating_add(spec.subjobs.max(1));
        if planner.instances > self.limits.submission_instances {
            let max = self.limits.submission_instances;
            return Err(
                over_limit(LimitName::SubmissionInstances, max, "instances in one submission").in_field("subjobs")
            );
        }
        let owner = Owner { id, pgrp, pid: spec.pid.filter(|&p| p != 0) };
        let agenda = Agenda::new(spec.agenda.iter().map(|w| self.symbols.intern(w)).collect());
        let first_callback = CallbackId::from_u32(planner.next_callback);
        let mut index = 0u32;
        for (c, cb) in spec.callbacks.iter().enumerate() {
            let (r, atoms) =
                self.callback_counted(cb, Some(owner), next_id(planner)?, index).map_err(|e| e.in_callback(c))?;
            count(planner, &self.limits, atoms).map_err(|e| e.in_callback(c))?;
            add(planner, r.action, r.slots, r.shape, &mut index);
        }
        if let Some(dep) = &spec.dependency {
            // PERF: each generated callback is resolved as it is made, against the
            // attribute's own text: none is held, and the text is not copied per callback.
            let (limits, so_far) = (self.limits, (planned(planner), planner.atoms));
            let budget = |groups: &[(u64, u64)]| ahead(so_far, &limits, groups).map_err(|e| e.in_field("dependency"));
            dependency_callbacks(dep, spec, self.limits.parse.atoms, budget, |expr, code| {
                let action = self.intern_action(Language::Qube, code, None, Some(level_of(code)));
                let (slots, shape) = resolve(&expr, Some(owner), dep, &mut self.symbols, &mut self.plan_steps)?;
                next_id(planner)?;
                count(planner, &self.limits, atom_count(&expr)).map_err(|e| e.in_field("dependency"))?;
                add(planner, action, slots, shape, &mut index);
                Ok(())
            })?;
        }
        for u in &self.universal {
            if owner.pid.is_none() && names_parent(&u.expr) {
                continue;
            }
            if let Ok((slots, shape)) =
                resolve(&u.expr, Some(owner), &u.source, &mut self.symbols, &mut self.plan_steps)
            {
                next_id(planner)?;
                count(planner, &self.limits, atom_count(&u.expr))?;
                add(planner, u.action, slots, shape, &mut index);
            }
        }
        Ok(JobRecord {
            pgrp,
            label,
            agenda,
            // A job has at least one instance, subjob 0, as in Qube (spec §9).
            subjobs: spec.subjobs.max(1),
            first_callback,
            callbacks: index,
            removed_reported: false,
        })
    }

    /// Ends planning: the first error by phase, or the plan with every label assigned.
    pub fn finish_plan(&mut self, mut planner: Planner) -> Result<Plan, Error> {
        if let Some((_, e)) = planner.error {
            return Err(e);
        }
        if planner.count == 0 {
            return Err(Error::new(ErrorKind::EmptySubmission, "empty submission; expected at least one job"));
        }
        let floors = self.generate_labels(&mut planner);
        let pgrp = planner.jobs[0].1.pgrp;
        Ok(Plan {
            jobs: planner.jobs,
            pgrp,
            callbacks: planner.callbacks,
            next_callback: planner.next_callback,
            floors,
        })
    }

    /// Gives each unlabelled job, in order, the smallest `qubeN` free in its group.
    /// Within one submission the free numbers of a group only grow, so each group's
    /// search resumes where it stopped: linear in the jobs, not quadratic. It starts at
    /// the group's floor (`Registry::qube_floor`), so a group joined by one unlabelled
    /// job at a time is not searched from `qube0` each time. Returns where each group's
    /// search stopped: the floors once the plan is committed.
    fn generate_labels(&mut self, planner: &mut Planner) -> Vec<(u64, u64)> {
        let mut next: HashMap<u64, u64> = HashMap::new();
        for &at in &planner.unlabeled {
            let pgrp = planner.jobs[at].1.pgrp;
            let n = next.entry(pgrp).or_insert_with(|| self.qube_floor.get(&pgrp).copied().unwrap_or(0));
            let sym = loop {
                self.plan_steps += 1;
                let sym = self.symbols.intern(&format!("qube{n}"));
                *n += 1;
                if !self.label_live(pgrp, sym) && planner.labels.insert((pgrp, sym)) {
                    break sym;
                }
            };
            planner.jobs[at].1.label = sym;
        }
        next.into_iter().collect()
    }

    /// Applies a plan made by [`Registry::finish_plan`] with no change in between.
    pub fn commit(&mut self, plan: &Plan) {
        for (id, record) in &plan.jobs {
            self.max_id = self.max_id.max(*id);
            self.groups.entry(record.pgrp).or_default().insert(record.label, *id);
            self.jobs.insert(*id, record.clone());
        }
        self.next_callback = plan.next_callback;
        // Every `qubeN` below where a search stopped is now live in its group.
        self.qube_floor.extend(plan.floors.iter().copied());
    }
}

/// The id the planner's next callback takes.
fn next_id(planner: &Planner) -> Result<CallbackId, Error> {
    if planner.next_callback == u32::MAX {
        return Err(id_space());
    }
    Ok(CallbackId::from_u32(planner.next_callback))
}

/// How many callbacks the submission has planned so far.
fn planned(planner: &Planner) -> u64 {
    u64::from(planner.next_callback - planner.callbacks.first)
}

/// Counts one more callback of `atoms` atoms against the per-submission limits, before
/// it is planned.
fn count(planner: &mut Planner, limits: &Limits, atoms: u64) -> Result<(), Error> {
    let callbacks = planned(planner) + 1;
    if callbacks > limits.submission_callbacks {
        let max = limits.submission_callbacks;
        return Err(over_limit(LimitName::SubmissionCallbacks, max, "callbacks in one submission"));
    }
    planner.atoms = planner.atoms.saturating_add(atoms);
    if planner.atoms > limits.submission_atoms {
        return count_error_atoms(limits);
    }
    Ok(())
}

/// The error [`count`] would give for one of the callbacks of `groups` ((callbacks,
/// atoms each), in the order they are made), found without making them: a `dependency`
/// attribute that generates a million callbacks past the limit is refused before the
/// first.
fn ahead(so_far: (u64, u64), limits: &Limits, groups: &[(u64, u64)]) -> Result<(), Error> {
    let (mut callbacks, mut atoms) = so_far;
    for &(n, each) in groups {
        // The first of the group past each limit (1-based), if any is.
        let room = limits.submission_callbacks.saturating_sub(callbacks);
        let past_callbacks = (n > room).then_some(room + 1);
        let past_atoms = match (limits.submission_atoms.saturating_sub(atoms)).checked_div(each) {
            Some(fit) if n > fit => Some(fit + 1),
            _ => None,
        };
        match (past_callbacks, past_atoms) {
            (Some(c), Some(a)) if a < c => return count_error_atoms(limits),
            (Some(_), _) => {
                let max = limits.submission_callbacks;
                return Err(over_limit(LimitName::SubmissionCallbacks, max, "callbacks in one submission"));
            }
            (None, Some(_)) => return count_error_atoms(limits),
            (None, None) => {}
        }
        callbacks += n;
        atoms = atoms.saturating_add(n.saturating_mul(each));
    }
    Ok(())
}

fn count_error_atoms(limits: &Limits) -> Result<(), Error> {
    Err(over_limit(LimitName::SubmissionAtoms, limits.submission_atoms, "trigger atoms in one submission"))
}

fn add(planner: &mut Planner, action: ActionId, slots: Vec<Slot>, shape: Shape, index: &mut u32) {
    planner.callbacks.push(action, slots, shape);
    planner.next_callback += 1;
    *index += 1;
}
