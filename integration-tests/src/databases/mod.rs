pub mod background;
pub mod kafka;
pub mod kv_clients;
pub mod redis;
