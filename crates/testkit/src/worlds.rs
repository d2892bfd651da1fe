//! Generated Gateway API inputs for property tests: a small deterministic generator (an
//! xorshift PRNG seeded per case, so a failing seed can be replayed) that mixes valid and
//! broken objects: listeners of every protocol (and unknown ones), conflicting ports,
//! wildcard and exact hostnames, routes of every kind with sectionNames and ports that may not
//! exist, matches, filters, weights, and backendRefs to missing Services, wrong ports,
//! other namespaces and unsupported kinds.

/// A tiny xorshift64* generator: deterministic, no dependencies.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// One of `items`.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `percent`%.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const NAMESPACES: &[&str] = &["default", "apps", "infra"];
const HOSTS: &[&str] = &[
    "a.example.com",
    "*.example.com",
    "b.example.com",
    "*.b.example.com",
    "example.org",
];
const PORTS: &[&str] = &["80", "8080", "443", "8443"];
const SERVICES: &[&str] = &["svc-a", "svc-b", "svc-c", "missing"];

/// A multi-document YAML world for `seed`. `http_only` keeps listeners HTTP (for inputs that
/// must be served by a plain-HTTP data plane).
pub fn world(seed: u64, http_only: bool) -> String {
    let mut r = Rng::new(seed);
    let mut out = String::new();
    out.push_str("apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: ferrogate}\nspec: {controllerName: gateway.ferrogate.dev/gatewayclass-controller}\n");
    for ns in NAMESPACES {
        out.push_str(&format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{team: {}}}}}\n", if ns.len() % 2 == 0 { "x" } else { "y" }));
    }
    for (i, svc) in SERVICES.iter().take(3).enumerate() {
        let ns = NAMESPACES[i % NAMESPACES.len()];
        let app = if r.chance(30) {
            ", appProtocol: kubernetes.io/h2c"
        } else {
            ""
        };
        out.push_str(&format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: {svc}, namespace: {ns}}}\nspec: {{ports: [{{name: http, port: 80{app}}}, {{name: udp, port: 53, protocol: UDP}}]}}\n"));
        out.push_str(&format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {svc}-1, namespace: {ns}, labels: {{kubernetes.io/service-name: {svc}}}}}\naddressType: IPv4\nports: [{{name: http, port: {}}}, {{name: udp, port: 53, protocol: UDP}}]\nendpoints: [{{addresses: [\"127.0.0.{}\"]}}]\n",
            9000 + i,
            i + 1
        ));
    }
    if r.chance(50) {
        out.push_str("---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: infra}\nspec: {from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}], to: [{group: \"\", kind: Service}]}\n");
    }
    let gateways = 1 + r.below(2);
    for g in 0..gateways {
        out.push_str(&format!("---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw{g}, namespace: default}}\nspec:\n  gatewayClassName: {}\n  listeners:\n", if r.chance(90) { "ferrogate" } else { "other" }));
        for l in 0..1 + r.below(4) {
            let protocol = if http_only {
                "HTTP"
            } else {
                r.pick(&["HTTP", "HTTP", "HTTPS", "TLS", "TCP", "UDP", "SCTP"])
            };
            out.push_str(&format!(
                "    - name: l{l}\n      protocol: {protocol}\n      port: {}\n",
                r.pick(PORTS)
            ));
            if r.chance(60) && !matches!(protocol, "TCP" | "UDP") {
                out.push_str(&format!("      hostname: \"{}\"\n", r.pick(HOSTS)));
            }
            if r.chance(40) {
                out.push_str(&format!(
                    "      allowedRoutes: {{namespaces: {{from: {}}}}}\n",
                    r.pick(&["All", "Same", "Selector"])
                ));
            }
            if matches!(protocol, "HTTPS" | "TLS") {
                let mode = if protocol == "TLS" && r.chance(50) {
                    "Passthrough"
                } else {
                    "Terminate"
                };
                out.push_str(&format!(
                    "      tls: {{mode: {mode}, certificateRefs: [{{name: missing-cert}}]}}\n"
                ));
            }
        }
    }
    for i in 0..r.below(6) {
        let ns = if r.chance(60) {
            "default"
        } else {
            r.pick(NAMESPACES)
        };
        let kind = if http_only {
            "HTTPRoute"
        } else {
            r.pick(&[
                "HTTPRoute",
                "HTTPRoute",
                "GRPCRoute",
                "TCPRoute",
                "UDPRoute",
                "TLSRoute",
            ])
        };
        let version = if matches!(kind, "TCPRoute" | "UDPRoute" | "TLSRoute") {
            "v1alpha2"
        } else {
            "v1"
        };
        out.push_str(&format!("---\napiVersion: gateway.networking.k8s.io/{version}\nkind: {kind}\nmetadata: {{name: r{i}, namespace: {ns}}}\nspec:\n  parentRefs:\n"));
        for _ in 0..1 + r.below(2) {
            let mut p = format!(
                "    - {{name: gw{}, namespace: default",
                r.below(gateways + 1)
            );
            if r.chance(30) {
                p.push_str(&format!(", sectionName: l{}", r.below(4)));
            }
            if r.chance(20) {
                p.push_str(&format!(", port: {}", r.pick(PORTS)));
            }
            p.push_str("}\n");
            out.push_str(&p);
        }
        if matches!(kind, "HTTPRoute" | "GRPCRoute" | "TLSRoute")
            && (kind == "TLSRoute" || r.chance(50))
        {
            out.push_str(&format!("  hostnames: [\"{}\"]\n", r.pick(HOSTS)));
        }
        out.push_str("  rules:\n");
        for _ in 0..1 + r.below(3) {
            out.push_str("    - ");
            if kind == "HTTPRoute" && r.chance(70) {
                let path = match r.below(4) {
                    0 => "{type: Exact, value: /exact}".to_string(),
                    1 => "{type: RegularExpression, value: \"/re/[a-z]+\"}".to_string(),
                    2 => "{type: RegularExpression, value: \"/(bad\"}".to_string(),
                    _ => format!("{{type: PathPrefix, value: /p{}}}", r.below(5)),
                };
                out.push_str(&format!("matches: [{{path: {path}"));
                if r.chance(40) {
                    out.push_str(", headers: [{name: x-h, value: v}]");
                }
                if r.chance(30) {
                    out.push_str(", queryParams: [{name: q, value: \"1\"}]");
                }
                if r.chance(20) {
                    out.push_str(", method: GET");
                }
                out.push_str("}]\n      ");
                if r.chance(40) {
                    let filter = r.pick(&[
                        "{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-a, value: b}], remove: [x-c]}}",
                        "{type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: x-r, value: s}]}}",
                        "{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}",
                        "{type: URLRewrite, urlRewrite: {hostname: rewritten.example.com, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}",
                        "{type: RequestMirror, requestMirror: {backendRef: {name: svc-a, namespace: default, port: 80}, percent: 50}}",
                        "{type: CORS, cors: {allowOrigins: [\"https://*.example.com\"], allowMethods: [GET]}}",
                        "{type: ExtensionRef, extensionRef: {group: example.com, kind: X, name: y}}",
                    ]);
                    out.push_str(&format!("filters: [{filter}]\n      "));
                }
            }
            out.push_str("backendRefs:\n");
            for _ in 0..r.below(3) {
                let port = if kind == "UDPRoute" {
                    "53"
                } else if r.chance(90) {
                    "80"
                } else {
                    "81"
                };
                let kind_field = if r.chance(5) {
                    ", group: example.com, kind: Widget"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "        - {{name: {}, namespace: {}, port: {port}, weight: {}{kind_field}}}\n",
                    r.pick(SERVICES),
                    r.pick(NAMESPACES),
                    r.below(4)
                ));
            }
        }
    }
    out
}
