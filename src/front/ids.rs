//! Dense `u32` identifiers, all made by one macro.
//!
//! Every table in the engine is indexed by one of these instead of a bare `usize`:
//! half the bytes on 64-bit machines, and the type says which table an index is for.

/// Defines a `u32` newtype identifier with a checked constructor.
macro_rules! define_id {
    ($(#[$meta:meta])* $vis:vis struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        $vis struct $name(u32);

        impl $name {
            /// The largest representable identifier.
            pub const MAX: $name = $name(u32::MAX);

            /// Returns the identifier for `index`, or `None` if it does not fit in `u32`.
            #[inline]
            pub fn new(index: usize) -> Option<$name> {
                u32::try_from(index).ok().map($name)
            }

            /// Wraps a raw `u32`.
            #[inline]
            pub const fn from_u32(raw: u32) -> $name {
                $name(raw)
            }

            /// The identifier as an index into its table.
            #[inline]
            pub const fn as_usize(self) -> usize {
                self.0 as usize
            }

            /// The raw `u32`.
            #[inline]
            pub const fn as_u32(self) -> u32 {
                self.0
            }
        }
    };
}

define_id! {
    /// An interned string: a label, work name, host name or custom event name.
    pub struct Symbol;
}

define_id! {
    /// A registered callback. Ids grow with registration order and are never reused,
    /// so ordering firings by id orders them by registration.
    pub struct CallbackId;
}

define_id! {
    /// A compiled circuit shape shared by every callback whose trigger has that shape.
    pub struct TemplateId;
}

define_id! {
    /// An interned action: language, code and maximum, shared by identical callbacks.
    pub struct ActionId;
}

define_id! {
    /// A table of the term index: one (event name, type, context) head.
    pub struct TableId;
}
