# Project-wide warning and sanitizer settings.
option(LLM_PROXY_WERROR "Treat warnings as errors" OFF)
option(LLM_PROXY_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)

add_library(llm_proxy_warnings INTERFACE)
target_compile_options(llm_proxy_warnings INTERFACE -Wall -Wextra)
if(LLM_PROXY_WERROR)
  target_compile_options(llm_proxy_warnings INTERFACE -Werror)
endif()

if(LLM_PROXY_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # Tests scale down loads that would take minutes under the sanitizers' instrumentation.
  add_compile_definitions(LLM_PROXY_SANITIZED=1)
endif()
