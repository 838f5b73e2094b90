/* rn_crc32c.h — CRC-32C (Castagnoli), SSE4.2 when the CPU has it, a table otherwise. */
#ifndef RN_CRC32C_H
#define RN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc: 0 to start; pass the previous result to continue over more data. */
uint32_t rn_crc32c(uint32_t crc, const void *data, size_t len);
uint32_t rn_crc32c_sw(uint32_t crc, const void *data, size_t len); /* table version, for tests */

#endif
