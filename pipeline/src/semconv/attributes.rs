//! Every attribute name the agent exports, once. Prometheus label names are
//! these with dots turned into underscores ([`prometheus_name`]).

pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
pub const HTTP_REQUEST_METHOD_ORIGINAL: &str = "http.request.method_original";
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
pub const HTTP_ROUTE: &str = "http.route";
pub const URL_PATH: &str = "url.path";
pub const URL_FULL: &str = "url.full";
pub const URL_SCHEME: &str = "url.scheme";
pub const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
pub const USER_AGENT_ORIGINAL: &str = "user_agent.original";
pub const HTTP_REQUEST_BODY_SIZE: &str = "http.request.body.size";
pub const HTTP_RESPONSE_BODY_SIZE: &str = "http.response.body.size";
pub const SERVER_ADDRESS: &str = "server.address";
pub const SERVER_PORT: &str = "server.port";
pub const CLIENT_ADDRESS: &str = "client.address";
pub const CLIENT_PORT: &str = "client.port";

pub const RPC_SYSTEM: &str = "rpc.system";
pub const RPC_SERVICE: &str = "rpc.service";
pub const RPC_METHOD: &str = "rpc.method";
pub const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";

pub const DB_SYSTEM_NAME: &str = "db.system.name";
pub const DB_OPERATION_NAME: &str = "db.operation.name";
pub const DB_COLLECTION_NAME: &str = "db.collection.name";
pub const DB_QUERY_TEXT: &str = "db.query.text";
pub const DB_NAMESPACE: &str = "db.namespace";
pub const DB_RESPONSE_STATUS_CODE: &str = "db.response.status_code";
pub const ERROR_TYPE: &str = "error.type";

pub const MESSAGING_SYSTEM: &str = "messaging.system";
pub const MESSAGING_OPERATION_TYPE: &str = "messaging.operation.type";
pub const MESSAGING_OPERATION_NAME: &str = "messaging.operation.name";
pub const MESSAGING_DESTINATION_NAME: &str = "messaging.destination.name";
pub const MESSAGING_DESTINATION_PARTITION_ID: &str = "messaging.destination.partition.id";
pub const MESSAGING_CLIENT_ID: &str = "messaging.client.id";
pub const MESSAGING_KAFKA_OFFSET: &str = "messaging.kafka.offset";

pub const SERVICE_NAME: &str = "service.name";
pub const SERVICE_NAMESPACE: &str = "service.namespace";
pub const PROCESS_PID: &str = "process.pid";
pub const SERVICE_INSTANCE_ID: &str = "service.instance.id";

pub const K8S_NAMESPACE_NAME: &str = "k8s.namespace.name";
pub const K8S_POD_NAME: &str = "k8s.pod.name";
pub const K8S_POD_UID: &str = "k8s.pod.uid";
pub const K8S_CONTAINER_NAME: &str = "k8s.container.name";
pub const K8S_NODE_NAME: &str = "k8s.node.name";
pub const K8S_POD_START_TIME: &str = "k8s.pod.start_time";
pub const K8S_DEPLOYMENT_NAME: &str = "k8s.deployment.name";
pub const K8S_REPLICASET_NAME: &str = "k8s.replicaset.name";
pub const K8S_STATEFULSET_NAME: &str = "k8s.statefulset.name";
pub const K8S_DAEMONSET_NAME: &str = "k8s.daemonset.name";
pub const K8S_OWNER_NAME: &str = "k8s.owner.name";
pub const K8S_CLUSTER_NAME: &str = "k8s.cluster.name";
pub const HOST_NAME: &str = "host.name";
pub const HOST_ID: &str = "host.id";
pub const OS_TYPE: &str = "os.type";
pub const TELEMETRY_SDK_NAME: &str = "telemetry.sdk.name";
pub const TELEMETRY_SDK_LANGUAGE: &str = "telemetry.sdk.language";
pub const TELEMETRY_SDK_VERSION: &str = "telemetry.sdk.version";

/// The Prometheus form of an attribute or metric name: `http.route` -> `http_route`.
pub fn prometheus_name(name: &str) -> String {
    name.replace('.', "_")
}
