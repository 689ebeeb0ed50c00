// NumPy .npy files for embedding matrices, so users can bring embeddings from any text encoder
// (`np.save("emb.npy", x.astype(np.float32))`) and inspect ours in Python.
//
// Read: format versions 1.0, 2.0 and 3.0; dtype '<f4' (or '=f4'/'f4' on this little-endian host);
// 2-D; C order, or Fortran order (transposed on read). Anything else is an InputError naming the
// file and what was found. Written: version 1.0, '<f4', C order, header padded to 64 bytes.
#pragma once

#include <filesystem>

#include "sid/sid_types.h"

namespace twistar {

EmbeddingMatrix load_npy(const std::filesystem::path& path);

/// Written atomically.
void save_npy(const std::filesystem::path& path, const EmbeddingMatrix& matrix);

}  // namespace twistar
