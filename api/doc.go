// Package api is what every front end of diffsim shares and nothing more: the values a score
// is asked and answered with (Image, Request, Result, the one JSON Record), the description of
// a model (ModelInfo with its Layers and Capabilities), the one model Spec, the resolution of
// a layer, timestep and metric (ModelInfo.Resolve), the one float codec (Float), the Scorer
// interface that a local session and a served one both implement, and the wire types and
// Client of `diffsim serve`'s HTTP API.
//
// Like ollama's api package it is a leaf: it links no runtime and no protobuf (go list -deps
// ./api shows the standard library, features/schedule and golang.org/x/sys/unix, for the
// socket's peer credentials), so the explorer, scripts and other programs can talk to a server
// without carrying ONNX Runtime.
package api
