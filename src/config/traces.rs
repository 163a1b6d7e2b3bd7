//! Where traces go and which are kept, from the standard OpenTelemetry variables:
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (or `OTEL_EXPORTER_OTLP_ENDPOINT` plus `/v1/traces`),
//! `OTEL_SERVICE_NAME` (default `pupmatch`), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
//! and `OTEL_TRACES_SAMPLER_ARG` (default parent-based, ratio 1.0 in development and 0.01 in
//! production), `OTEL_SDK_DISABLED`. The exporter itself is [`crate::infra::traces`].

/// Which traces are recorded and sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerSetting {
    /// Follow the caller's decision when a request comes with a sampled or unsampled parent.
    pub parent_based: bool,
    /// The share of new traces recorded (0 to 1).
    pub ratio: f64,
}

/// Where traces go and which are sent.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The collector's OTLP/HTTP traces URL.
    pub endpoint: String,
    pub service_name: String,
    pub sampler: SamplerSetting,
}

impl TraceSettings {
    /// The settings from the standard `OTEL_*` variables (read through `var`); None when no
    /// endpoint is set or the SDK is disabled.
    pub fn from_env(
        var: impl Fn(&str) -> Option<String>,
        production: bool,
    ) -> Result<Option<TraceSettings>, String> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let endpoint = match (
            var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            var("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(traces), _) => traces.trim().to_string(),
            (None, Some(base)) => format!("{}/v1/traces", base.trim().trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        match url::Url::parse(&endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(format!(
                    "the OTLP traces endpoint {endpoint:?} is not an http(s) URL"
                ));
            }
        }
        let default_ratio = if production { 0.01 } else { 1.0 };
        let ratio = match var("OTEL_TRACES_SAMPLER_ARG") {
            None => default_ratio,
            Some(arg) => match arg.trim().parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => r,
                _ => {
                    return Err(format!(
                        "OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1, not {arg:?}"
                    ));
                }
            },
        };
        let sampler = match var("OTEL_TRACES_SAMPLER")
            .unwrap_or_else(|| "parentbased_traceidratio".into())
            .trim()
        {
            "always_on" => SamplerSetting {
                parent_based: false,
                ratio: 1.0,
            },
            "always_off" => SamplerSetting {
                parent_based: false,
                ratio: 0.0,
            },
            "traceidratio" => SamplerSetting {
                parent_based: false,
                ratio,
            },
            "parentbased_always_on" => SamplerSetting {
                parent_based: true,
                ratio: 1.0,
            },
            "parentbased_always_off" => SamplerSetting {
                parent_based: true,
                ratio: 0.0,
            },
            "parentbased_traceidratio" => SamplerSetting {
                parent_based: true,
                ratio,
            },
            other => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER {other:?} is not supported (always_on, always_off, \
                     traceidratio, parentbased_always_on, parentbased_always_off, \
                     parentbased_traceidratio)"
                ));
            }
        };
        let from_attributes = var("OTEL_RESOURCE_ATTRIBUTES").and_then(|attrs| {
            attrs.split(',').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k.trim() == "service.name").then(|| v.trim().to_string())
            })
        });
        let service_name = var("OTEL_SERVICE_NAME")
            .or(from_attributes)
            .unwrap_or_else(|| "pupmatch".into());
        Ok(Some(TraceSettings {
            endpoint,
            service_name,
            sampler,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)], production: bool) -> Result<Option<TraceSettings>, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TraceSettings::from_env(|k| vars.get(k).cloned(), production)
    }

    #[test]
    fn no_endpoint_means_no_traces() {
        assert_eq!(settings(&[], false), Ok(None));
        assert_eq!(
            settings(
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    ("OTEL_SDK_DISABLED", "true")
                ],
                false
            ),
            Ok(None)
        );
    }

    #[test]
    fn the_standard_variables_are_read() {
        let s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")], false)
            .expect("valid")
            .expect("on");
        assert_eq!(s.endpoint, "http://c:4318/v1/traces");
        assert_eq!(s.service_name, "pupmatch");
        assert_eq!(
            s.sampler,
            SamplerSetting {
                parent_based: true,
                ratio: 1.0
            }
        );
        let prod = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")], true)
            .expect("valid")
            .expect("on");
        assert_eq!(prod.sampler.ratio, 0.01, "production samples 1 %");
        let s = settings(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t:443/traces"),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment=prod,service.name=api",
                ),
            ],
            true,
        )
        .expect("valid")
        .expect("on");
        assert_eq!(s.endpoint, "https://t:443/traces");
        assert_eq!(
            s.sampler,
            SamplerSetting {
                parent_based: false,
                ratio: 0.25
            }
        );
        assert_eq!(s.service_name, "api");
    }

    #[test]
    fn bad_values_are_refused_with_their_name() {
        for (k, v) in [
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ("OTEL_TRACES_SAMPLER_ARG", "half"),
        ] {
            let err = settings(
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), (k, v)],
                false,
            )
            .expect_err("refused");
            assert!(err.contains(k), "{err}");
        }
        assert!(settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318")], false).is_err());
    }
}
