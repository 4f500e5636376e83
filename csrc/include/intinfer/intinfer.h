/* intinfer C API: a small, stable C99 interface over the C++ API (intinfer/model.h) for
 * Android apps through JNI and for other languages' foreign function interfaces.
 *
 * Every function catches all C++ exceptions and reports them as a status code plus a message
 * (intinfer_last_error). Handles are opaque. Ownership, lifetimes and thread safety are stated
 * at each declaration and in docs/c_api.md. */
#ifndef INTINFER_INTINFER_H_
#define INTINFER_INTINFER_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library version this header belongs to; intinfer_version() tells the one linked in. */
#define INTINFER_VERSION "0.1.0"

/* Enumerations travel as int32_t, so that every compiler and foreign function interface agrees
 * on their size, and a value outside the list stays well-defined on the C++ side. */

/* Returned by every function that can fail. */
typedef int32_t intinfer_status;
enum intinfer_status_code {
  INTINFER_OK = 0,
  INTINFER_ERROR_ARGUMENT = 1, /* a NULL pointer, an index out of range, an unknown enum value */
  INTINFER_ERROR_MODEL = 2,    /* missing, truncated, corrupt or newer model file */
  INTINFER_ERROR_INPUT = 3,    /* inputs of the wrong count, rank, shape, dtype or byte size */
  INTINFER_ERROR_INTERNAL = 4  /* anything else, out of memory included */
};

/* Element types; the values are those of the C++ intinfer::DType and of the .iif format. */
typedef int32_t intinfer_dtype;
enum intinfer_dtype_code { INTINFER_FLOAT32 = 1, INTINFER_UINT8 = 2, INTINFER_INT8 = 3, INTINFER_INT32 = 4 };

typedef struct intinfer_options intinfer_options;
typedef struct intinfer_model intinfer_model;
typedef struct intinfer_session intinfer_session;

/* A model input or output as declared by the model. */
typedef struct intinfer_tensor_info {
  const char* name;
  intinfer_dtype dtype;
  int32_t rank;         /* -1 only for an output whose shape no input size can be planned for */
  const int64_t* dims;  /* rank entries; -1 marks a dimension that varies with the inputs (batch) */
  int32_t quantized;    /* 1: per-tensor quantization, real = scale * (q - zero_point); else 0 */
  float scale;          /* 0 when not quantized */
  int32_t zero_point;   /* 0 when not quantized */
  int64_t id_rows;      /* an int32 input read as row ids (a GATHER's): valid ids are [0, id_rows), the
                           fewest rows of the tables that read it; 0 for any other tensor */
} intinfer_tensor_info;

/* A tensor passed to or returned by intinfer_session_run: dense, row-major (C order). */
typedef struct intinfer_tensor {
  intinfer_dtype dtype;
  int32_t rank;
  const int64_t* dims; /* rank entries, each >= 1; may be NULL when rank is 0 */
  const void* data;
  size_t byte_size;    /* must equal the product of dims times the size of dtype */
} intinfer_tensor;

/* Library version ("0.1.0"): a static string. */
const char* intinfer_version(void);

/* The .iif format revision this library implements: it reads files of version major.m for any m
 * (docs/format.md, Versioning); minor is the newest revision it knows. Either pointer may be NULL. */
void intinfer_format_version(int32_t* major, int32_t* minor);

/* A static name for a status ("OK", "ERROR_MODEL", ...); "UNKNOWN" for other values. */
const char* intinfer_status_name(intinfer_status status);

/* The message of the last call that failed on the calling thread ("" if none has). Calls that
 * succeed leave it as it is. The string is owned by the library and stays valid until the next
 * failing call on the same thread, or the thread's exit. */
const char* intinfer_last_error(void);

/* Load options; NULL options wherever they are taken mean the defaults. The loaders read the
 * options during the call only: they may be freed right after. */
intinfer_status intinfer_options_create(intinfer_options** out);
/* Intra-op threads of the model's thread pool; 0 (the default) means one per physical core, at
 * most the CPUs this process may run on. Above 4 x those CPUs is refused (ERROR_ARGUMENT). */
intinfer_status intinfer_options_set_num_threads(intinfer_options* options, int32_t num_threads);
/* How many input shapes' plans (shapes and activation offsets) the model keeps, the least
 * recently used dropped first; 0 plans every run. The default is 64 (docs/runtime.md). */
intinfer_status intinfer_options_set_plan_cache_size(intinfer_options* options, int32_t size);
/* What one run may demand (each > 0): bytes of one activation tensor (default 256 MiB), of all
 * activations (1 GiB), and multiply-accumulates (2^40). A file beyond them at its smallest input
 * sizes is refused at load (ERROR_MODEL); larger input shapes by intinfer_session_run
 * (ERROR_INPUT), before anything is allocated (docs/runtime.md, Limits). */
intinfer_status intinfer_options_set_max_tensor_bytes(intinfer_options* options, uint64_t bytes);
intinfer_status intinfer_options_set_max_arena_bytes(intinfer_options* options, uint64_t bytes);
intinfer_status intinfer_options_set_max_macs(intinfer_options* options, uint64_t macs);
void intinfer_options_free(intinfer_options* options); /* NULL is ignored */

/* Loads a .iif file; the file is memory-mapped and must not change while the model lives. */
intinfer_status intinfer_model_load_file(const char* path, const intinfer_options* options, intinfer_model** out);
/* Loads a .iif file from memory. The bytes are copied: the caller may free them on return. */
intinfer_status intinfer_model_load_buffer(const void* data, size_t size, const intinfer_options* options,
                                           intinfer_model** out);
/* Frees the handle (NULL is ignored). Sessions created from it stay valid: they keep the model
 * itself alive. Strings and dims returned by the info functions become invalid. */
void intinfer_model_free(intinfer_model* model);

intinfer_status intinfer_model_num_threads(const intinfer_model* model, int32_t* out);
intinfer_status intinfer_model_input_count(const intinfer_model* model, int32_t* out);
intinfer_status intinfer_model_output_count(const intinfer_model* model, int32_t* out);
/* Fills *out; its name and dims point into the model handle and live as long as it. */
intinfer_status intinfer_model_input_info(const intinfer_model* model, int32_t index, intinfer_tensor_info* out);
intinfer_status intinfer_model_output_info(const intinfer_model* model, int32_t index, intinfer_tensor_info* out);

/* A session runs a model: it owns the activation memory and the outputs of its last run. Use
 * one session from one thread at a time; several sessions of one model may run concurrently. */
intinfer_status intinfer_session_create(const intinfer_model* model, intinfer_session** out);
void intinfer_session_free(intinfer_session* session); /* NULL is ignored */

/* Runs the model on `input_count` inputs in model input order. The input data is read during
 * the call only. Dimensions declared -1 may take any size >= 1 on each call. */
intinfer_status intinfer_session_run(intinfer_session* session, const intinfer_tensor* inputs, int32_t input_count);
/* Output `index` of the last successful run. Its dims and data are owned by the session and stay
 * valid until the next intinfer_session_run on it (successful or not) or intinfer_session_free. */
intinfer_status intinfer_session_output(const intinfer_session* session, int32_t index, intinfer_tensor* out);

#ifdef __cplusplus
}
#endif

#endif /* INTINFER_INTINFER_H_ */
