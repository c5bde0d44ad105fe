// Package heatmap turns token grids into pictures and pictures into terminal bytes.
//
// It is shaped like image/png: pure functions build images (Render, Legend, Overlay, Fit,
// Resize, Quantize) and encoders write them (SixelEncoder, KittyEncoder, HalfBlock).
// Nothing here knows about the terminal it writes to; ui/termgfx decides which encoder to
// use and where the bytes go.
//
// Costs drive the design (see docs/terminal.md): encode at the on-screen pixel size, never
// more; a heatmap is an *image.Paletted whose palette is its colormap, so the sixel encoder
// uses it as is; a photograph is quantised once (Quantize) and the caller caches the
// encoded bytes; encoders keep their scratch buffers between calls.
package heatmap
