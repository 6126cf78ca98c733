//! Partitions between the sides of the system: the gateway, each provider's servers, each
//! provider's clients. A directed cut blocks frames from one side to another; a two-way
//! partition is two directed cuts. Counts, not flags, so overlapping partitions heal correctly.

/// One side of a partition, in a dense index: 0 is the gateway, then for each provider `p`
/// its servers at `1 + 2p` and its clients at `2 + 2p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Gateway,
    Servers(usize),
    Clients(usize),
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Gateway => 0,
            Side::Servers(p) => 1 + 2 * p,
            Side::Clients(p) => 2 + 2 * p,
        }
    }
}

/// Active directed cuts, as a dense matrix of counts.
#[derive(Clone, Debug)]
pub struct Partitions {
    sides: usize,
    cuts: Vec<u16>,
    active: u32,
}

impl Partitions {
    pub fn new(providers: usize) -> Self {
        let sides = 1 + 2 * providers;
        Partitions {
            sides,
            cuts: vec![0; sides * sides],
            active: 0,
        }
    }

    fn slot(&self, from: Side, to: Side) -> usize {
        from.index() * self.sides + to.index()
    }

    /// Cuts `from -> to`; and `to -> from` too unless `one_way`.
    pub fn cut(&mut self, a: Side, b: Side, one_way: bool) {
        let i = self.slot(a, b);
        self.cuts[i] += 1;
        self.active += 1;
        if !one_way {
            let j = self.slot(b, a);
            self.cuts[j] += 1;
            self.active += 1;
        }
    }

    pub fn heal(&mut self, a: Side, b: Side, one_way: bool) {
        let i = self.slot(a, b);
        assert!(self.cuts[i] > 0, "healing a partition that is not active");
        self.cuts[i] -= 1;
        self.active -= 1;
        if !one_way {
            let j = self.slot(b, a);
            assert!(self.cuts[j] > 0, "healing a partition that is not active");
            self.cuts[j] -= 1;
            self.active -= 1;
        }
    }

    /// Whether a frame from `from` to `to` is blocked now. Free when nothing is cut.
    /// Whether any cut is in force (when not, nothing is blocked).
    #[inline]
    pub fn any_active(&self) -> bool {
        self.active > 0
    }

    #[inline]
    pub fn blocks(&self, from: Side, to: Side) -> bool {
        self.active > 0 && self.cuts[self.slot(from, to)] > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_way_cut_blocks_one_direction_and_heals() {
        let mut p = Partitions::new(3);
        p.cut(Side::Gateway, Side::Servers(2), true);
        assert!(p.blocks(Side::Gateway, Side::Servers(2)));
        assert!(!p.blocks(Side::Servers(2), Side::Gateway));
        p.cut(Side::Gateway, Side::Servers(2), false);
        p.heal(Side::Gateway, Side::Servers(2), true);
        assert!(
            p.blocks(Side::Gateway, Side::Servers(2)),
            "the two-way cut is still active"
        );
        p.heal(Side::Gateway, Side::Servers(2), false);
        assert!(!p.blocks(Side::Gateway, Side::Servers(2)));
        assert!(!p.blocks(Side::Servers(2), Side::Gateway));
    }
}
