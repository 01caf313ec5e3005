/* gr-ria: symbol visibility for the public C++ API. */
#ifndef INCLUDED_RIA_API_H
#define INCLUDED_RIA_API_H

#include <gnuradio/attributes.h>

#ifdef gnuradio_ria_EXPORTS
#define RIA_API __GR_ATTR_EXPORT
#else
#define RIA_API __GR_ATTR_IMPORT
#endif

#endif /* INCLUDED_RIA_API_H */
