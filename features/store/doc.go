// Package store finds, downloads and registers the models diffsim runs.
//
// It shares one cache with the Python Hugging Face tools: files live in the
// standard hub cache layout (see huggingface_hub's file_download.py), so a
// model that transformers, diffusers or huggingface-cli already fetched is
// found without a download, and a model diffsim pulls is reused by them:
//
//	$HF_HUB_CACHE (else $HF_HOME/hub, else ~/.cache/huggingface/hub)
//	  models--{org}--{name}/
//	    blobs/{etag}                  file contents, named by their hash
//	    blobs/{etag}.incomplete       a download in progress (resumed with Range)
//	    snapshots/{commit}/{path}     relative symlinks to ../../blobs/{etag}
//	    refs/{revision}               the commit a branch or tag resolved to
//	  .locks/models--{org}--{name}/{etag}.lock
//
// Pull talks to the hub's HTTP API the way huggingface_hub does: one
// GET /api/models/{repo}/revision/{rev} lists the files and pins the commit,
// then each file is fetched from /{repo}/resolve/{commit}/{path} after a HEAD
// that is not allowed to leave the hub's host, whose X-Linked-Etag/ETag and
// X-Linked-Size/Content-Length say what the bytes must hash to and how many
// there are. For LFS files the ETag is the sha256 of the content, for the
// others the git blob sha1; both are checked before a file becomes visible.
// HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE mean what they mean to Python.
//
// Nothing the server says is used as a path unchecked: repository ids,
// revisions, file names and ETags are validated before they touch the disk.
//
// Besides the cache, a small JSON registry in diffsim's config folder
// ($DIFFSIM_CONFIG, else os.UserConfigDir()/diffsim, file models.json) names
// local folders and .onnx files the user imported. Resolve turns the --model
// argument into a Local; List shows what is on disk.
//
// ONNX Runtime refuses external weights (model.onnx_data, weights.pb) that it
// reaches through a symbolic link ("escapes model directory"), and every file
// in a hub snapshot is such a link. Materialize therefore presents a snapshot
// as real files: hard links in a private folder next to the blobs (same
// filesystem, no extra space), or copies where hard links are impossible.
package store
