//! Compiled circuits: a trigger's shape lowered to a check over latch bits.
//!
//! The naive way evaluates the trigger tree on every event. Here each distinct shape is
//! compiled once into a [`Template`] that every callback of that shape shares (a million
//! frame triggers `a-f && b-f` are one template), and a callback keeps only its latch
//! word. A pure AND is `latch == full`, a pure OR `latch != 0`; mixed shapes run a short
//! post-order program over the latch bits, linear in the trigger's size.

use hashbrown::HashMap;

use super::snapshot::{snapshot_error, Dec, Enc};
use crate::error::Error;
use crate::front::ids::TemplateId;
use crate::front::resolve::Shape;

/// One node of a post-order program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    /// Push latch bit `slot`.
    Leaf(u32),
    /// Pop `arity` values, push their AND.
    And(u32),
    /// Pop `arity` values, push their OR.
    Or(u32),
}

#[derive(Clone, Debug)]
enum Check {
    /// Every slot must be set.
    All,
    /// Any slot set is enough.
    Any,
    /// A mixed shape.
    Program(Box<[Node]>),
}

/// A compiled shape.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    width: u32,
    check: Check,
    /// How many of its slots are event atoms (each one posting in the index).
    pub postings: u32,
}

impl Template {
    /// What the check is, for `trigwire check`.
    pub fn describe(&self) -> String {
        let w = self.width;
        match &self.check {
            Check::All => format!("AND of {w} latch bit(s): true when all are set"),
            Check::Any => format!("OR of {w} latch bit(s): true when any is set"),
            Check::Program(nodes) => {
                let ops: Vec<String> = nodes
                    .iter()
                    .map(|n| match n {
                        Node::Leaf(s) => format!("bit{s}"),
                        Node::And(k) => format!("and/{k}"),
                        Node::Or(k) => format!("or/{k}"),
                    })
                    .collect();
                format!("program over {w} latch bit(s), post-order: {}", ops.join(" "))
            }
        }
    }

    /// The shape this template was compiled from, rebuilt from its check (a pure AND
    /// or OR over its slots in order, or its program): explanations print it, so no
    /// callback and no template keeps it.
    pub fn shape(&self) -> Shape {
        let slots = || (0..self.width).map(Shape::Slot).collect::<Vec<_>>();
        match &self.check {
            Check::All if self.width == 1 => Shape::Slot(0),
            Check::All => Shape::And(slots()),
            Check::Any => Shape::Or(slots()),
            Check::Program(nodes) => {
                let mut stack: Vec<Shape> = Vec::new();
                for node in nodes.iter() {
                    match *node {
                        Node::Leaf(s) => stack.push(Shape::Slot(s)),
                        Node::And(n) | Node::Or(n) => {
                            let children = stack.split_off(stack.len() - n as usize);
                            stack.push(if matches!(node, Node::And(_)) {
                                Shape::And(children)
                            } else {
                                Shape::Or(children)
                            });
                        }
                    }
                }
                stack.pop().unwrap_or(Shape::And(Vec::new()))
            }
        }
    }

    /// Slots (latch bits) of this template.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Latch words a callback of this template needs.
    pub fn words(&self) -> usize {
        (self.width as usize).div_ceil(64).max(1)
    }

    /// Whether the latches make the trigger true.
    pub fn is_true(&self, latch: &[u64]) -> bool {
        match &self.check {
            Check::All => all_set(latch, self.width),
            Check::Any => latch.iter().any(|&w| w != 0),
            Check::Program(nodes) => run(nodes, latch),
        }
    }
}

fn all_set(latch: &[u64], width: u32) -> bool {
    let full_words = (width / 64) as usize;
    if latch[..full_words].iter().any(|&w| w != u64::MAX) {
        return false;
    }
    let rest = width % 64;
    rest == 0 || latch[full_words] & ((1u64 << rest) - 1) == (1u64 << rest) - 1
}

fn bit(latch: &[u64], slot: u32) -> bool {
    latch[(slot / 64) as usize] >> (slot % 64) & 1 == 1
}

fn run(nodes: &[Node], latch: &[u64]) -> bool {
    let mut stack: smallvec::SmallVec<[bool; 16]> = smallvec::SmallVec::new();
    for node in nodes {
        match *node {
            Node::Leaf(s) => stack.push(bit(latch, s)),
            Node::And(n) | Node::Or(n) => {
                let at = stack.len() - n as usize;
                let value = match node {
                    Node::And(_) => stack[at..].iter().all(|&b| b),
                    _ => stack[at..].iter().any(|&b| b),
                };
                stack.truncate(at);
                stack.push(value);
            }
        }
    }
    stack.pop().unwrap_or(false)
}

/// The table of templates, one per distinct shape.
#[derive(Clone, Debug, Default)]
pub(crate) struct Templates {
    list: Vec<Template>,
    by_shape: HashMap<(Shape, u32), TemplateId>,
}

impl Templates {
    /// The template of `shape` with `postings` event slots, compiling it on first sight.
    pub fn intern(&mut self, shape: &Shape, postings: u32) -> TemplateId {
        // PERF: looked up by reference; cloning the shape for the key cost two
        // allocations per registered callback.
        if let Some(&id) = self.by_shape.get(&ShapeRef(shape, postings)) {
            return id;
        }
        let id = TemplateId::new(self.list.len()).expect("fewer than 2^32 shapes");
        self.list.push(compile(shape, postings));
        self.by_shape.insert((shape.clone(), postings), id);
        id
    }

    pub fn get(&self, id: TemplateId) -> &Template {
        &self.list[id.as_usize()]
    }

    pub fn heap_bytes(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<Template>()
            + self.by_shape.capacity() * (std::mem::size_of::<(Shape, u32, TemplateId)>() + 1)
    }
}

/// A borrowed `(Shape, u32)` key: hashes as the owned key does, compares equal to it.
#[derive(Hash)]
struct ShapeRef<'a>(&'a Shape, u32);

impl hashbrown::Equivalent<(Shape, u32)> for ShapeRef<'_> {
    fn equivalent(&self, key: &(Shape, u32)) -> bool {
        *self.0 == key.0 && self.1 == key.1
    }
}

fn compile(shape: &Shape, postings: u32) -> Template {
    let width = shape.width();
    let leaves = |xs: &[Shape]| xs.iter().all(|x| matches!(x, Shape::Slot(_)));
    let check = match shape {
        Shape::Slot(_) => Check::All,
        Shape::And(xs) if leaves(xs) && xs.len() as u32 == width => Check::All,
        Shape::Or(xs) if leaves(xs) && xs.len() as u32 == width => Check::Any,
        _ => {
            let mut nodes = Vec::new();
            lower(shape, &mut nodes);
            Check::Program(nodes.into_boxed_slice())
        }
    };
    Template { width, check, postings }
}

fn lower(shape: &Shape, out: &mut Vec<Node>) {
    match shape {
        Shape::Slot(s) => out.push(Node::Leaf(*s)),
        Shape::And(xs) | Shape::Or(xs) => {
            xs.iter().for_each(|x| lower(x, out));
            let n = xs.len() as u32;
            out.push(if matches!(shape, Shape::And(_)) { Node::And(n) } else { Node::Or(n) });
        }
    }
}

// Snapshots (format: src/engine/snapshot.rs): each template's shape and posting count,
// in id order; the compiled checks and the shape map are rebuilt from them.
impl Templates {
    /// How many templates there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn encode(&self, e: &mut Enc) {
        let mut shapes: Vec<Option<&(Shape, u32)>> = vec![None; self.list.len()];
        for (key, id) in &self.by_shape {
            shapes[id.as_usize()] = Some(key);
        }
        e.len(shapes.len());
        for (shape, postings) in shapes.into_iter().map(|s| s.expect("every template has its shape")) {
            e.u32(*postings);
            encode_shape(shape, e);
        }
    }

    /// Decodes templates whose shapes nest at most `depth` deep.
    pub(crate) fn decode(d: &mut Dec<'_>, depth: u32) -> Result<Templates, Error> {
        let mut templates = Templates::default();
        for _ in 0..d.count_upto(9, u32::MAX.into())? {
            let at = d.offset();
            let postings = d.u32()?;
            let shape = decode_shape(d, depth)?;
            let before = templates.list.len();
            let id = templates.intern(&shape, postings);
            if id.as_usize() != before || postings > templates.list[before].width {
                return Err(snapshot_error(at, "a template is listed twice or has more postings than slots"));
            }
        }
        Ok(templates)
    }
}

fn encode_shape(shape: &Shape, e: &mut Enc) {
    match shape {
        Shape::Slot(s) => {
            e.u8(0);
            e.u32(*s);
        }
        Shape::And(xs) | Shape::Or(xs) => {
            e.u8(if matches!(shape, Shape::And(_)) { 1 } else { 2 });
            e.len(xs.len());
            xs.iter().for_each(|x| encode_shape(x, e));
        }
    }
}

fn decode_shape(d: &mut Dec<'_>, depth: u32) -> Result<Shape, Error> {
    d.nested(depth, |d| match d.tag(3, "shape node")? {
        0 => {
            let slot = d.u32()?;
            d.check(slot < u32::MAX, || "a slot out of range".into())?;
            Ok(Shape::Slot(slot))
        }
        tag => {
            let n = d.count(5)?;
            d.check(n > 0, || "an empty AND or OR".into())?;
            let xs = (0..n).map(|_| decode_shape(d, depth)).collect::<Result<Vec<_>, _>>()?;
            Ok(if tag == 1 { Shape::And(xs) } else { Shape::Or(xs) })
        }
    })
}
