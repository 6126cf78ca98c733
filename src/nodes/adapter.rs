//! The partner adapter (proxied mode). Its routing lives in [`super::gateway::adapter_route`]
//! beside the gateway it talks to; this module holds its state: frames translated per
//! direction, for the report.

use super::Addr;
use crate::wire::{Frame, ProviderId};

#[derive(Clone, Debug)]
pub struct Adapter {
    pub provider: ProviderId,
    pub translated_up: u64,
    pub translated_down: u64,
}

impl Adapter {
    pub fn new(provider: ProviderId) -> Self {
        Adapter {
            provider,
            translated_up: 0,
            translated_down: 0,
        }
    }

    /// Translates and forwards: native frame -> stanza upstream, stanza -> native downstream.
    pub fn handle_frame(&mut self, from: Addr, frame: &Frame) -> Option<Addr> {
        let to = super::gateway::adapter_route(from, frame)?;
        if to == Addr::Gateway {
            self.translated_up += 1;
        } else {
            self.translated_down += 1;
        }
        Some(to)
    }
}
