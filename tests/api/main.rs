//! Integration tests: the real service on real databases, driven over real
//! sockets by an HTTP client and a tonic client.

mod helpers;

mod grpc;
mod migrations;
mod operations;
mod rest;
