# Compiles a text file into a target as a C++ string:
#   llm_proxy_embed_text(<target> <input file> <namespace> <symbol>)
# defines `extern const char <symbol>[]` (NUL-terminated) and `extern const std::size_t
# <symbol>_size` in <namespace>. The text is rebuilt into the target when the file changes.
# The same file is the build-time script (cmake -P) that writes the C++ source.

if(CMAKE_SCRIPT_MODE_FILE)
  file(READ "${INPUT}" text)
  string(FIND "${text}" ")embedded_text\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${INPUT} contains the raw string delimiter )embedded_text\"")
  endif()
  file(WRITE "${OUTPUT}.tmp"
       "// Generated from ${INPUT} by cmake/EmbedText.cmake; do not edit.\n"
       "#include <cstddef>\n\n"
       "namespace ${NAMESPACE} {\n"
       "extern const char ${SYMBOL}[];\n"
       "extern const std::size_t ${SYMBOL}_size;\n"
       "const char ${SYMBOL}[] = R\"embedded_text(${text})embedded_text\";\n"
       "const std::size_t ${SYMBOL}_size = sizeof(${SYMBOL}) - 1;\n"
       "}  // namespace ${NAMESPACE}\n")
  file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
  return()
endif()

set(LLM_PROXY_EMBED_TEXT_SCRIPT ${CMAKE_CURRENT_LIST_FILE})

function(llm_proxy_embed_text target input namespace symbol)
  get_filename_component(name ${input} NAME)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded/${name}.cpp)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DINPUT=${input} -DOUTPUT=${out} -DNAMESPACE=${namespace}
            -DSYMBOL=${symbol} -P ${LLM_PROXY_EMBED_TEXT_SCRIPT}
    DEPENDS ${input} ${LLM_PROXY_EMBED_TEXT_SCRIPT}
    COMMENT "Embedding ${name}"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
endfunction()
