//! Logs, and with the `otel` cargo feature OpenTelemetry traces.
//!
//! Logs go to stderr as text, or one JSON object a line with `SWITCHYARD_LOG_FORMAT=json`
//! (the event's fields at the top, the request's span — its id, trace id, method and path —
//! under `span`), filtered by `RUST_LOG`.
//!
//! Built with `--features otel` and given `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), the process also exports its spans — each request,
//! with what runs inside it — over OTLP/HTTP (protobuf) to that collector, in batches, as
//! service `switchyard` (`OTEL_SERVICE_NAME` overrides it); a request carrying a W3C
//! `traceparent` joins that trace (`http::request_id::join_trace`). Without the feature none of this is
//! compiled in.

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What must live until the process ends (the span exporter, flushed when dropped).
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("warning: the last spans could not be exported: {error}");
        }
    }
}

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm_migration=warn"))
}

/// Installs the process's logging (and trace export, where built and configured).
pub fn init() -> Telemetry {
    let json = std::env::var("SWITCHYARD_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json {
        logs.json().flatten_event(true).with_current_span(true).with_span_list(false).with_filter(filter()).boxed()
    } else {
        logs.with_filter(filter()).boxed()
    };
    #[cfg(feature = "otel")]
    {
        let (traces, provider) = match otel::layer() {
            Some((layer, provider)) => (Some(layer.with_filter(filter())), Some(provider)),
            None => (None, None),
        };
        // A subscriber already installed (an embedding program's) is kept.
        let _ = tracing_subscriber::registry().with(logs).with(traces).try_init();
        Telemetry { provider }
    }
    #[cfg(not(feature = "otel"))]
    {
        // A subscriber already installed (an embedding program's) is kept.
        let _ = tracing_subscriber::registry().with(logs).try_init();
        Telemetry {}
    }
}

#[cfg(feature = "otel")]
pub mod otel {
    //! The OpenTelemetry pieces: the OTLP exporter and the W3C trace-context propagator.

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::registry::LookupSpan;

    /// The layer that turns spans into OpenTelemetry spans, with its provider; None when no
    /// collector is configured (or the exporter cannot be built: said on stderr).
    pub fn layer<S>()
    -> Option<(tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>, SdkTracerProvider)>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let configured = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
            .iter()
            .any(|name| std::env::var_os(name).is_some());
        if !configured {
            return None;
        }
        let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
            Ok(exporter) => exporter,
            Err(error) => {
                eprintln!("warning: no trace export: {error}");
                return None;
            }
        };
        let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "switchyard".to_owned());
        let resource = opentelemetry_sdk::Resource::builder().with_service_name(service).build();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        let tracer = provider.tracer("switchyard");
        Some((tracing_opentelemetry::layer().with_tracer(tracer), provider))
    }
}
