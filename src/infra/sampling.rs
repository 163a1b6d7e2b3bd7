//! Which traces are recorded, decided once at each trace's root so that the spans of a trace
//! that is not sent cost next to nothing.
//!
//! [`Sampled`] filters the layer that turns spans into OpenTelemetry spans. A trace begins only
//! at a root span made through [`root`] or [`continuing`] (a request, a socket frame, a job
//! run, a delivery); there it is decided whether the trace is recorded — following the caller's
//! `traceparent` when the sampler is parent-based, else by the configured ratio. A later span or
//! event reaches the layer only when the span it is made in does; the rest (99 % of them at
//! the production ratio) never build an OpenTelemetry span at all.

use std::cell::Cell;

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;
use rand::Rng;
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Filter};
use tracing_subscriber::registry::LookupSpan;

use super::traces::SamplerSetting;

/// What the root span being made continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Continues {
    /// Nothing: a new trace, recorded by the configured ratio.
    New,
    /// A trace from elsewhere, recorded there or not.
    Trace { sampled: bool },
    /// Nothing traced: work whose origin was not recorded (a delivery of an unrecorded
    /// request) is not recorded either.
    Untraced,
}

thread_local! {
    static CONTINUES: Cell<Option<Continues>> = const { Cell::new(None) };
}

/// Makes a root span with `make` as the continuation of `parent` (a caller's context from a
/// `traceparent`, or an empty one): the root is recorded as the sampler decides for a trace
/// with that parent, and becomes the parent's child when it is. `untraced_without_parent`: with
/// no parent, the root is not recorded (work done for something that was not traced).
pub fn continuing(
    parent: Context,
    untraced_without_parent: bool,
    make: impl FnOnce() -> tracing::Span,
) -> tracing::Span {
    let remote = parent.span().span_context().clone();
    let continues = if remote.is_valid() {
        Some(Continues::Trace {
            sampled: remote.is_sampled(),
        })
    } else if untraced_without_parent {
        Some(Continues::Untraced)
    } else {
        Some(Continues::New)
    };
    CONTINUES.with(|c| c.set(continues));
    let span = make();
    CONTINUES.with(|c| c.set(None));
    if remote.is_valid() {
        super::traces::adopt(&span, parent);
    }
    span
}

/// Makes a root span with `make`: a new trace, recorded by the configured ratio. (A span made
/// otherwise, outside any recorded span, is not recorded.)
pub fn root(make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    continuing(Context::new(), false, make)
}

/// The filter that lets only recorded traces through.
pub struct Sampled {
    sampler: SamplerSetting,
}

impl Sampled {
    pub fn new(sampler: SamplerSetting) -> Self {
        Sampled { sampler }
    }

    fn by_ratio(&self) -> bool {
        self.sampler.ratio >= 1.0
            || (self.sampler.ratio > 0.0 && rand::rng().random::<f64>() < self.sampler.ratio)
    }

    fn root_is_recorded(&self, continues: Continues) -> bool {
        match continues {
            Continues::Trace { sampled } if self.sampler.parent_based => sampled,
            Continues::Trace { .. } | Continues::New => self.by_ratio(),
            Continues::Untraced => false,
        }
    }
}

impl<S> Filter<S> for Sampled
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, meta: &Metadata<'_>, cx: &LayerContext<'_, S>) -> bool {
        if meta.is_span()
            && let Some(continues) = CONTINUES.with(|c| c.take())
        {
            return self.root_is_recorded(continues);
        }
        // Made in a span this filter let through (so of a recorded trace), or not at all.
        cx.current_span()
            .id()
            .is_some_and(|current| cx.span(current).is_some())
    }

    fn callsite_enabled(&self, _meta: &'static Metadata<'static>) -> Interest {
        // Decided span by span.
        Interest::sometimes()
    }
}
